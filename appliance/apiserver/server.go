// Package apiserver serves the masters' HTTP/JSON API under /v1 (its wire
// types and Go client are package api). Reads come from a state snapshot;
// writes become store commands. Any GET
// accepts ?index=N&wait=D and blocks until the state is newer than N (at most
// D), which is how agents and `berth get -w` watch.
package apiserver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

// Backend is the replicated store as the API needs it.
type Backend interface {
	State() *state.State
	Wait(ctx context.Context, afterIndex uint64) (uint64, error)
	Propose(ctx context.Context, batch []state.Command) (uint64, error)
}

// Config wires a Server.
type Config struct {
	Backend    Backend
	Heartbeats *reconcile.Heartbeats
	Sync       func() api.SyncStatus
	Logger     *slog.Logger
	// Ready reports whether this master can serve (has a Raft leader);
	// nil means always.
	Ready func() error
	// MaxWait caps ?wait= (default 5 minutes).
	MaxWait time.Duration
	// Host, when set, is reported in /v1/status (the appliance's storage).
	Host *api.HostStatus
	// Power, when set, serves POST /v1/system/reboot and /poweroff (admin
	// token only); it must return before the machine goes down.
	Power func(action string) error
	// Cluster, when set, serves joins, membership, snapshots and
	// ?consistent=true reads.
	Cluster Cluster
	// PeerTLS is how this master reaches other masters, and NodeTLS how it
	// reaches agents (logs): its own certificate, the cluster CA, and the
	// organization the server's certificate must have.
	PeerTLS, NodeTLS *tls.Config
	// Webhook is POST /v1/webhook.
	Webhook WebhookConfig
	// SyncNow, with Webhook.Trigger, serves POST /v1/sync: it makes the
	// syncer fetch and returns its status once a fetch that started after
	// the call has ended (gitops.Syncer.SyncNow).
	SyncNow func(ctx context.Context) (api.SyncStatus, error)
	// Version is the masters' build, for GET /v1/version.
	Version string
}

// Server serves the API.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
	// nodeClient reaches the agents (for logs).
	nodeClient *http.Client
	// leaderTransport relays reads that must be current to the leader.
	leaderTransport *http.Transport
	webhookRefusals *httpserve.RefusalLog
	eventReports    reportLimits
}

// maxBody bounds request bodies; the largest is a pod status.
const maxBody = 1 << 20

// NewServer builds the API handler.
func NewServer(cfg Config) *Server {
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), reg: prometheus.NewRegistry(),
		nodeClient:      &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.NodeTLS, DialContext: (&net.Dialer{Timeout: nodeDialTimeout}).DialContext}},
		webhookRefusals: &httpserve.RefusalLog{Log: cfg.Logger, Msg: "webhook call refused"}}
	if cfg.PeerTLS != nil {
		// One transport for every relayed read, so its connections to the
		// leader are reused (one per read leaked three goroutines). It
		// presents no certificate of this master: the caller's token is
		// what the leader judges.
		tc := cfg.PeerTLS.Clone()
		tc.Certificates = nil
		s.leaderTransport = &http.Transport{TLSClientConfig: tc, DialContext: (&net.Dialer{Timeout: nodeDialTimeout}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: time.Minute}
	}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_api_requests_total", Help: "API requests by route and status code."}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "berth_api_request_seconds", Help: "API latency by route (blocking queries included).", Buckets: prometheus.DefBuckets}, []string{"route"})
	s.reg.MustRegister(s.reqs, s.latency, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "berth_state_index", Help: "Raft index of the state this master serves."},
		func() float64 { return float64(cfg.Backend.State().Index) }), convergenceCollector{cfg.Backend})

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.route("GET /v1/status", readers, s.status)
	s.route("GET /v1/revisions", readers, s.revisions)
	s.route("GET /v1/nodes", readers, s.nodes)
	s.route("POST /v1/nodes", anyAgent, s.registerNode)
	s.route("POST /v1/nodes/{name}/heartbeat", self, s.heartbeat)
	s.route("DELETE /v1/nodes/{existing}", admins, s.deleteNode)
	s.route("PUT /v1/nodes/{existing}/scheduling", admins, s.nodeScheduling)
	// A node's pods come with the Secrets they use: only that node's agent
	// (and admins) may read them.
	s.route("GET /v1/nodes/{name}/pods", self, s.nodePods)
	s.route("POST /v1/nodes/{name}/events", self, s.recordEvents)
	s.route("GET /v1/events", readers, s.events)
	s.route("GET /v1/pods", readers, s.pods)
	s.route("PUT /v1/pods/{namespace}/{pod}/status", podOwner, s.podStatus)
	s.route("DELETE /v1/pods/{namespace}/{pod}", podOwner, s.deletePod)
	s.route("DELETE /v1/claims/{namespace}/{claim}", claimNode, s.forgetClaim)
	s.mux.HandleFunc("GET /v1/pods/{namespace}/{pod}/logs", s.logs)
	s.mux.HandleFunc("POST /v1/pods/{namespace}/{pod}/exec", s.exec)
	s.mux.HandleFunc("POST /v1/pods/{namespace}/{pod}/portforward", s.portForward)
	s.route("GET /v1/top", readers, s.top)
	s.route("GET /v1/deployments", readers, s.deployments)
	s.route("GET /v1/daemonsets", readers, s.daemonSets)
	s.route("GET /v1/statefulsets", readers, s.statefulSets)
	s.route("GET /v1/rollouts/{kind}/{namespace}/{object}", readers, s.rollout)
	s.route("GET /v1/rollouts/{kind}/{namespace}/{object}/history", readers, s.rolloutHistory)
	s.route("GET /v1/claims", readers, s.claims)
	s.route("GET /v1/jobs", readers, s.jobs)
	s.route("GET /v1/cronjobs", readers, s.cronJobs)
	s.route("GET /v1/services", proxies, s.services)
	s.route("GET /v1/secrets", readers, s.secrets)
	s.route("GET /v1/objects", readers, s.appliedObjects)
	s.mux.HandleFunc("POST /v1/webhook", s.webhook)
	s.route("POST /v1/sync", admins, s.syncNow)
	s.route("POST /v1/applied/secrets", readers, s.compareSecrets)
	s.route("GET /v1/version", readers, s.version)
	s.route("GET /v1/whoami", anyone, s.whoami)
	s.route("GET /v1/tokens", admins, s.listTokens)
	s.route("POST /v1/tokens", admins, s.createToken)
	s.route("DELETE /v1/tokens/{id}", admins, s.revokeToken)
	if cfg.Power != nil {
		s.route("POST /v1/system/{action}", admins, s.power)
	}
	if cfg.Cluster != nil {
		s.clusterRoutes()
	}
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// apiError is an error with the HTTP status it answers with.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// handler answers with a value to encode as JSON, or an error.
type handler func(w http.ResponseWriter, r *http.Request, st *state.State) (any, error)

// route registers an authenticated /v1 handler with its access policy,
// blocking-query support, metrics and JSON errors.
func (s *Server) route(pattern string, allow policy, h handler) {
	names := pathNamesOf(pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := http.StatusOK
		defer func() {
			s.reqs.WithLabelValues(pattern, strconv.Itoa(code)).Inc()
			s.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		}()
		v, err := s.serve(w, r, allow, names, h)
		if errors.Is(err, errForwarded) {
			return
		}
		if err != nil {
			code = http.StatusInternalServerError
			var ae *apiError
			if errors.As(err, &ae) {
				code = ae.code
			}
			if code == http.StatusUnauthorized || code == http.StatusForbidden {
				s.cfg.Logger.Warn("request denied", "route", pattern, "remote", r.RemoteAddr,
					"who", identityOf(r).Name, "role", identityOf(r).Role, "why", err.Error())
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, code, v)
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, allow policy, names []string, h handler) (any, error) {
	id, err := s.authenticate(r, s.cfg.Backend.State())
	if err != nil {
		return nil, err
	}
	*r = *r.WithContext(withIdentity(r.Context(), id))
	if !allow(id, r, s.cfg.Backend.State()) {
		return nil, errorf(http.StatusForbidden, "%s %s is not allowed for %s %q", r.Method, r.URL.Path, id.Role, id.Name)
	}
	if err := checkPathNames(r, names); err != nil {
		return nil, err
	}
	index, wait, err := s.blocking(r)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		// The answer may come wait later (here, or from the leader).
		httpserve.Hold(w, r, wait)
	}
	if r.Method == http.MethodGet && r.URL.Query().Get("consistent") == "true" {
		if err := s.consistent(w, r); err != nil {
			return nil, err
		}
	}
	st := s.cfg.Backend.State()
	if wait == 0 {
		w.Header().Set("X-Berth-Index", strconv.FormatUint(st.Index, 10))
		return h(w, r, st)
	}
	// A blocking query answers once the state is past index and, when the
	// client sent the hash of the answer it has, once its own answer
	// differs from that: a change elsewhere in the cluster wakes no agent.
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	seen := r.URL.Query().Get("hash")
	for {
		if _, err := s.cfg.Backend.Wait(ctx, index); err != nil && ctx.Err() == nil {
			return nil, err
		}
		st = s.cfg.Backend.State()
		v, err := h(w, r, st)
		if err != nil {
			return nil, err
		}
		sum := answerHash(v)
		if sum != seen || ctx.Err() != nil {
			w.Header().Set("X-Berth-Index", strconv.FormatUint(st.Index, 10))
			w.Header().Set("X-Berth-Hash", sum)
			return v, nil
		}
		index = st.Index
	}
}

// answerHash identifies an answer's content for blocking queries.
func answerHash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// blocking reads a blocking query's ?index= and ?wait= (capped at
// MaxWait); wait is 0 for a request that does not block.
func (s *Server) blocking(r *http.Request) (index uint64, wait time.Duration, err error) {
	q := r.URL.Query()
	if r.Method != http.MethodGet || q.Get("index") == "" {
		return 0, 0, nil
	}
	index, err = strconv.ParseUint(q.Get("index"), 10, 64)
	if err != nil {
		return 0, 0, errorf(http.StatusBadRequest, "index: %v", err)
	}
	wait = 30 * time.Second
	if q.Get("wait") != "" {
		if wait, err = time.ParseDuration(q.Get("wait")); err != nil || wait < 0 {
			return 0, 0, errorf(http.StatusBadRequest, "wait: want a duration such as 30s")
		}
	}
	return index, min(wait, s.cfg.MaxWait), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decodeBody reads a JSON body strictly: unknown fields are errors, as in
// the specs, so a client's typo never silently drops a field.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errorf(http.StatusRequestEntityTooLarge, "request body over %d KiB", maxBody>>10)
		}
		if timedOut(err) {
			return errorf(http.StatusRequestTimeout, "the request body did not arrive in time")
		}
		return errorf(http.StatusBadRequest, "malformed request body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "malformed request body: more than one JSON value")
	}
	return nil
}

// timedOut: the server's read deadline cut a body short, which is the
// client's slowness (408), not a malformed body.
func timedOut(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

func (s *Server) propose(r *http.Request, cmds ...state.Command) error {
	if _, err := s.cfg.Backend.Propose(r.Context(), cmds); err != nil {
		return errorf(http.StatusServiceUnavailable, "cannot commit: %v", err)
	}
	return nil
}

// readyz answers once the store can serve; a master with no repository
// configured is ready all the same.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
	}
	io.WriteString(w, "ok\n")
}

// power reboots or powers off an appliance master.
func (s *Server) power(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	action := r.PathValue("action")
	if action != "reboot" && action != "poweroff" {
		return nil, errorf(http.StatusNotFound, "no system action %q (reboot, poweroff)", action)
	}
	if err := s.cfg.Power(action); err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "%s: %v", action, err)
	}
	s.cfg.Logger.Warn("system action requested through the API", "action", action, "remote", r.RemoteAddr)
	return map[string]string{"action": action}, nil
}
