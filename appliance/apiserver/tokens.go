package apiserver

import (
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
)

// maxDescription bounds a token's description, which `berth token list`
// prints in a table.
const maxDescription = 200

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	var req api.TokenRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.Description) > maxDescription || strings.IndexFunc(req.Description, unicode.IsControl) >= 0 {
		return nil, errorf(http.StatusBadRequest, "description: at most %d characters, none of them control characters", maxDescription)
	}
	if !auth.ValidRole(req.Role) {
		return nil, errorf(http.StatusBadRequest, "unknown role %q (want admin, read-only, master-join or agent-join)", req.Role)
	}
	lim := auth.DefaultLimits(req.Role)
	if req.TTL != "" {
		var err error
		if lim.TTL, err = time.ParseDuration(req.TTL); err != nil {
			return nil, errorf(http.StatusBadRequest, "ttl: want a duration such as 24h, or 0 for until revoked")
		}
	}
	if req.Uses != nil {
		lim.Uses = *req.Uses
	}
	// The role is known, so what New refuses is a limit the caller chose.
	secret, t, err := auth.New(req.Role, req.Description, lim, time.Now())
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if err := s.propose(r, state.NewCommand(state.CmdAddToken, t)); err != nil {
		return nil, err
	}
	t.Hash = ""
	s.cfg.Logger.Info("token created", "id", t.ID, "role", t.Role, "expires", t.Expires, "uses", t.Uses, "by", identityOf(r).Name)
	return api.NewToken{Secret: secret, Token: t}, nil
}

// listTokens lists tokens without their hashes.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	out := []auth.Token{}
	for _, t := range st.Tokens {
		t.Hash = ""
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	id := r.PathValue("id")
	if _, ok := st.Tokens[id]; !ok {
		return nil, errorf(http.StatusNotFound, "no token %q", id)
	}
	if err := s.propose(r, state.NewCommand(state.CmdRevokeToken, state.TokenRef{ID: id})); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("token revoked", "id", id, "by", identityOf(r).Name)
	return map[string]bool{"ok": true}, nil
}

// whoami answers who the request's credentials are: a token's role and
// ID (never its secret or hash), or a certificate's role and name.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	id := identityOf(r)
	if id.Role == RoleNode || id.Role == RoleMaster {
		return api.WhoAmI{Role: id.Role, Certificate: id.Name}, nil
	}
	return api.WhoAmI{Role: id.Role, TokenID: id.Name}, nil
}
