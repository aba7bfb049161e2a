package apiserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/store"
	"github.com/berth/berth/schemas/names"
)

// Cluster is what the API needs of the master for membership, joins and
// snapshots; package appliance provides it.
type Cluster interface {
	Join(ctx context.Context, role auth.Role, req api.JoinRequest) (api.JoinResponse, error)
	AddMember(ctx context.Context, req api.MemberRequest) error
	RemoveMember(ctx context.Context, id string) error
	Members(st *state.State) ([]api.Member, error)
	// VerifyLeader fails unless this master leads (store.ErrNotLeader) or
	// can no longer confirm it does (a partitioned old leader).
	VerifyLeader(ctx context.Context) error
	// LeaderURL is the leader's API URL, "" when unknown.
	LeaderURL() string
	IsLeader() bool
	// Forward sends a leader-only request (an /v1/internal path) to the
	// leader as this master.
	Forward(ctx context.Context, path string, body any) error
	SaveSnapshot(ctx context.Context, w io.Writer) error
	RestoreSnapshot(ctx context.Context, r io.Reader) error
}

func (s *Server) clusterRoutes() {
	c := s.cfg.Cluster
	s.route("POST /v1/join/master", joining(auth.RoleMasterJoin), func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		return s.join(r, st, auth.RoleMasterJoin)
	})
	s.route("POST /v1/join/agent", joining(auth.RoleAgentJoin), func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		return s.join(r, st, auth.RoleAgentJoin)
	})
	s.route("GET /v1/members", readers, func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		return c.Members(st)
	})
	s.route("POST /v1/members", masters, func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		var req api.MemberRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		if req.ID != identityOf(r).Name {
			return nil, errorf(http.StatusForbidden, "master %q may only add itself", identityOf(r).Name)
		}
		return map[string]bool{"ok": true}, unavailable(c.AddMember(r.Context(), req))
	})
	s.route("DELETE /v1/members/{existing}", func(id Identity, r *http.Request, st *state.State) bool {
		return id.Role == auth.RoleAdmin || id.Role == RoleMaster && id.Name == r.PathValue("existing")
	}, func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		if _, ok := st.MasterAPIs[r.PathValue("existing")]; !ok {
			return nil, errorf(http.StatusNotFound, "no master %q", r.PathValue("existing"))
		}
		s.cfg.Logger.Info("removing master", "id", r.PathValue("existing"), "by", identityOf(r).Name)
		return map[string]bool{"ok": true}, unavailable(c.RemoveMember(r.Context(), r.PathValue("existing")))
	})
	s.route("POST /v1/internal/propose", masters, func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		var batch []state.Command
		if err := decodeBody(r, &batch); err != nil {
			return nil, err
		}
		index, err := s.cfg.Backend.Propose(r.Context(), batch)
		if errors.Is(err, store.ErrRejected) {
			// Not 503: proposing it again fails the same way, and the
			// forwarding master must tell its client so (a join token
			// used up by a join through another master).
			return nil, errorf(http.StatusConflict, "%v", err)
		}
		if err != nil {
			return nil, errorf(http.StatusServiceUnavailable, "cannot commit: %v", err)
		}
		return map[string]uint64{"index": index}, nil
	})
	s.route("POST /v1/internal/members", masters, func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		var req api.MemberRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, unavailable(c.AddMember(r.Context(), req))
	})
	s.route("POST /v1/internal/members/remove", masters, func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		var req api.MemberRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, unavailable(c.RemoveMember(r.Context(), req.ID))
	})
	s.route("POST /v1/internal/heartbeat/{name}", masters, func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
		hb, err := decodeHeartbeat(r)
		if err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, s.beat(r, st, r.PathValue("name"), hb)
	})
	s.mux.HandleFunc("GET /v1/snapshot", s.stream(admins, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/octet-stream")
		return c.SaveSnapshot(r.Context(), w)
	}))
	restore := func(w http.ResponseWriter, r *http.Request) error {
		if err := c.RestoreSnapshot(r.Context(), r.Body); err != nil {
			return errorf(http.StatusBadRequest, "restore: %v", err)
		}
		s.cfg.Logger.Warn("cluster state restored from a snapshot", "by", identityOf(r).Name)
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return nil
	}
	s.mux.HandleFunc("PUT /v1/snapshot", s.stream(admins, restore))
	s.mux.HandleFunc("PUT /v1/internal/snapshot", s.stream(masters, restore))
}

func (s *Server) join(r *http.Request, st *state.State, role auth.Role) (any, error) {
	req, err := decodeJoin(r, role)
	if err != nil {
		return nil, err
	}
	// A join whose answer was lost (503 while the leader changed) may have
	// been counted: sent again with the same certificate request, it is
	// the same join, counted once and answered. Authentication left the
	// uses to count here; a spent token is refused before any signing.
	by, err := pki.CSRKeyID(req.CSRPEM)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "join: %v", err)
	}
	use := state.TokenUse{ID: identityOf(r).Name, Time: time.Now(), By: by}
	if _, err := st.Tokens[use.ID].Use(use.Time, use.By); err != nil {
		return nil, tokenRefused(err)
	}
	resp, err := s.cfg.Cluster.Join(r.Context(), role, req)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "join: %v", err)
	}
	// The certificate, and a master's cluster secret, leave only once the
	// join is counted against its token, through Raft: the FSM refuses a
	// use past the token's last, so of two joins with one single-use token
	// that both got this far, exactly one is answered.
	if _, err := s.cfg.Backend.Propose(r.Context(), []state.Command{state.NewCommand(state.CmdUseToken, use)}); err != nil {
		if errors.Is(err, store.ErrRejected) {
			return nil, tokenRefused(err)
		}
		return nil, errorf(http.StatusServiceUnavailable, "cannot commit the join: %v", err)
	}
	s.cfg.Logger.Info("joined", "name", req.Name, "role", role, "token", use.ID)
	return resp, nil
}

// decodeJoin reads a join request and checks the names that go into the
// certificate and the cluster's tables: the joiner's name (a node name, or
// a master's Raft ID) and its hosts.
func decodeJoin(r *http.Request, role auth.Role) (api.JoinRequest, error) {
	var req api.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		return req, err
	}
	if req.Name == "" || len(req.CSRPEM) == 0 {
		return req, errorf(http.StatusBadRequest, "name and csrPEM are required")
	}
	rule := nodeName
	if role == auth.RoleMasterJoin {
		rule = masterName
	}
	if err := rule.check(req.Name); err != nil {
		return req, err
	}
	for _, h := range req.Hosts {
		if net.ParseIP(h) == nil && !names.IsDNS1123Subdomain(strings.ToLower(h)) {
			return req, errorf(http.StatusBadRequest, "invalid host %q: want an IP address or a DNS name", h)
		}
	}
	return req, nil
}

// unavailable turns a failure to commit into 503, which clients retry.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return errorf(http.StatusServiceUnavailable, "%v", err)
}

// stream serves a non-JSON route (snapshots) with the same authentication
// and denial logs as route. Once authenticated, a snapshot may take as long
// as it streams (httpserve.Stream).
func (s *Server) stream(allow policy, h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := s.cfg.Backend.State()
		id, err := s.authenticate(r, st)
		if err == nil && !allow(id, r, st) {
			err = errorf(http.StatusForbidden, "%s %s is not allowed for %s %q", r.Method, r.URL.Path, id.Role, id.Name)
		}
		if err == nil {
			sw, end := httpserve.Stream(w, r)
			err = h(sw, r.WithContext(withIdentity(r.Context(), id)))
			end()
		}
		if err != nil {
			code := http.StatusInternalServerError
			if ae, ok := err.(*apiError); ok {
				code = ae.code
			}
			if code == http.StatusUnauthorized || code == http.StatusForbidden {
				s.cfg.Logger.Warn("request denied", "route", r.URL.Path, "remote", r.RemoteAddr, "who", id.Name, "why", err.Error())
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
		}
	}
}

// forwardToLeader relays a request for a read that must be current to the
// leader, keeping the caller's bearer token: the leader decides what the
// caller may read. It presents no client certificate of its own.
func (s *Server) forwardToLeader(w http.ResponseWriter, r *http.Request) bool {
	leader := s.cfg.Cluster.LeaderURL()
	if leader == "" || r.Header.Get(forwardedHeader) != "" || s.leaderTransport == nil {
		return false // no leader known, or a stale hint: never loop
	}
	r.Header.Set(forwardedHeader, "1")
	target, err := url.Parse(leader)
	if err != nil {
		return false
	}
	p := httputil.NewSingleHostReverseProxy(target)
	p.Transport = s.leaderTransport
	p.ServeHTTP(w, r)
	return true
}

// forwardedHeader marks a request one master relayed to another.
const forwardedHeader = "X-Berth-Forwarded"

// errForwarded says the response was written by forwarding.
var errForwarded = errors.New("forwarded")

// consistent makes a read that asked for ?consistent=true current: this
// master confirms it still leads (a partitioned old leader cannot), or
// relays the read to the leader.
func (s *Server) consistent(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Cluster == nil {
		return errorf(http.StatusBadRequest, "consistent reads need a clustered master")
	}
	err := s.cfg.Cluster.VerifyLeader(r.Context())
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotLeader) && s.forwardToLeader(w, r) {
		return errForwarded
	}
	return errorf(http.StatusServiceUnavailable, "cannot serve a consistent read: %v", err)
}
