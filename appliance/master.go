// Package appliance is the master: it wires the replicated store, the API,
// the Git source and the leader-only controllers into one process.
package appliance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/apiserver"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/store"
	"github.com/berth/berth/appliance/ui"
	"github.com/berth/berth/gitops"
	"github.com/berth/berth/reconcile"
)

// Config is one master's configuration.
type Config struct {
	// Name is this master's Raft ID, unique in the cluster; default the
	// host name.
	Name    string
	DataDir string
	// Listen is the API address (default ":7443"); Advertise is the
	// address other masters, agents and people reach it at (default: the
	// listener's, 127.0.0.1 for an unspecified host).
	Listen, Advertise string
	// RaftListen is the Raft transport's address (default ":7444");
	// RaftAdvertise is where peers dial it (default: Advertise's host).
	RaftListen, RaftAdvertise string
	// Bootstrap makes a data dir without state the first master of a new
	// cluster; Token, if set, becomes its admin token.
	Bootstrap bool
	// Join is any member's API URL (or several, comma-separated): a data
	// dir without state joins that cluster with Token (a master join
	// token), trusting only a CA with the fingerprint CAHash.
	Join, Token, CAHash string
	// Repo is the config repository (path, file:// or http(s)://); empty
	// runs a master with no desired state, which says so in /v1/status.
	Repo, Branch, Path string
	// RepoUsername and RepoPassword authenticate to an http(s) Repo with
	// basic auth; a token goes in RepoPassword, as with git.
	RepoUsername, RepoPassword string
	Poll                       time.Duration
	// PodNetwork sizes a new cluster's pod addresses (zero:
	// state.DefaultPodNetwork); it is fixed once the cluster exists.
	PodNetwork state.PodNetwork
	// RevisionHistory is how many revisions the state keeps (0:
	// state.DefaultRevisionHistory), and the applied one if it is older.
	RevisionHistory int
	ServiceCIDR     netip.Prefix
	NodeTimeouts    reconcile.NodeTimeouts
	Logger          *slog.Logger
	// Host and Power are the appliance image's (see apiserver.Config).
	Host  *api.HostStatus
	Power func(action string) error

	// WebhookSecret checks the push webhook's calls; WebhookAllowUnsigned
	// accepts calls that carry no signature (see apiserver.WebhookConfig).
	WebhookSecret        []byte
	WebhookAllowUnsigned bool
	// Version is the build, as GET /v1/version reports it.
	Version string
	// HTTPLimits bound the API's connections; zero fields take
	// httpserve.DefaultLimits.
	HTTPLimits httpserve.Limits
}

// Master is a running master.
type Master struct {
	cfg    Config
	Store  *store.Store
	id     *identity
	syncer *gitops.Syncer
	// token is the admin token this master knows (bootstrap, or from a
	// previous start's DATA/admin.conf); "" on joined masters.
	token string
	// peers reaches other masters as this master; nodeTLS is how it
	// reaches agents.
	peers   *http.Client
	nodeTLS *tls.Config
	ln      net.Listener
	srv     *httpserve.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// closers undo start-up, newest first: Close runs them, and so does
	// Start when a step fails, so that a failed start leaves nothing open
	// (a Raft store left open keeps raft.db locked against the retry).
	closers []func() error
}

// onClose pushes f on the stack Close unwinds.
func (m *Master) onClose(f func() error) { m.closers = append(m.closers, f) }

// Start opens the store in cfg.DataDir (bootstrapping a new cluster or
// joining one when it is empty) and serves the API over TLS.
func Start(ctx context.Context, cfg Config) (*Master, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	if cfg.Advertise == "" {
		cfg.Advertise = advertised(ln.Addr())
	}
	if cfg.RaftAdvertise == "" {
		host, _, _ := net.SplitHostPort(cfg.Advertise)
		_, port, _ := net.SplitHostPort(cfg.RaftListen)
		cfg.RaftAdvertise = net.JoinHostPort(host, port)
	}
	m := &Master{cfg: cfg, ln: ln}
	m.onClose(ln.Close)
	if err := m.open(ctx); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.serve(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (cfg *Config) defaults() error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		cfg.Name = h
	}
	if cfg.Listen == "" {
		cfg.Listen = ":7443"
	}
	if cfg.RaftListen == "" {
		cfg.RaftListen = ":7444"
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = reconcile.DefaultServiceCIDR
	}
	if cfg.NodeTimeouts == (reconcile.NodeTimeouts{}) {
		cfg.NodeTimeouts = reconcile.DefaultNodeTimeouts
	}
	return nil
}

// advertised is a listener's address as others dial it.
func advertised(a net.Addr) string {
	addr := a.(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// open brings up the store with this master's identity: the one on disk,
// or a new cluster's, or one a member hands out on joining.
func (m *Master) open(ctx context.Context) error {
	cfg := m.cfg
	hosts := certHosts(cfg.Advertise, cfg.RaftAdvertise)
	var (
		ca      *pki.CA
		masters []string
		err     error
	)
	fresh := false
	m.id, err = loadIdentity(cfg.DataDir)
	switch {
	case err == nil:
		// A join that got its certificate but was not added as a member
		// (the leader was away, the process stopped) is resumed.
		if masters, err = readJoinPending(cfg.DataDir); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("master identity in %s: %w", tlsDir(cfg.DataDir), err)
	case fileExists(filepath.Join(cfg.DataDir, "raft", "raft.db")):
		// Raft state without this master's certificate: a data dir of a
		// berth from before TLS, or a half-finished join. Never bootstrap
		// or join over it: that would fork or lose its history.
		return fmt.Errorf("%s holds Raft state but no master identity (%s); move it away to start afresh", cfg.DataDir, tlsDir(cfg.DataDir))
	case cfg.Bootstrap:
		if m.id, ca, err = bootstrapIdentity(cfg.Name, hosts); err != nil {
			return err
		}
		fresh = true
	case cfg.Join != "":
		m.id, masters, err = joinCluster(ctx, cfg.Join, cfg.Token, cfg.CAHash, api.JoinRequest{Name: cfg.Name, Hosts: hosts})
		if err != nil {
			return fmt.Errorf("joining %s: %w", cfg.Join, err)
		}
		fresh = true
	default:
		return fmt.Errorf("%s holds no cluster state: bootstrap a new cluster or join one", cfg.DataDir)
	}
	if fresh {
		if err := m.id.save(cfg.DataDir); err != nil {
			return err
		}
	}
	if masters != nil {
		// Written after the identity, removed once a member: a restart in
		// between adds this master again instead of waiting forever as a
		// store that no cluster knows.
		if err := writeJoinPending(cfg.DataDir, masters); err != nil {
			return err
		}
	}
	raftTLS, err := pki.MutualTLS(m.id.caPEM, m.id.certPEM, m.id.keyPEM)
	if err != nil {
		return err
	}
	clientTLS, err := pki.ClientTLS(m.id.caPEM, m.id.certPEM, m.id.keyPEM, pki.OrgMasters)
	if err != nil {
		return err
	}
	if m.nodeTLS, err = pki.ClientTLS(m.id.caPEM, m.id.certPEM, m.id.keyPEM, pki.OrgNodes); err != nil {
		return err
	}
	m.peers = &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: time.Minute}
	m.Store, err = store.Open(store.Config{DataDir: cfg.DataDir, NodeID: cfg.Name, BindAddr: cfg.RaftListen, Advertise: cfg.RaftAdvertise,
		TLS: raftTLS, Bootstrap: ca != nil, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	m.onClose(m.Store.Close)
	switch {
	case ca != nil:
		if err := m.waitLeader(ctx); err != nil {
			return err
		}
		admin, masterJoin, agentJoin, err := m.bootstrapState(ctx, ca, cfg.Token)
		if err != nil {
			return fmt.Errorf("bootstrapping: %w", err)
		}
		m.token = admin
		for name, secret := range map[string]string{"join-master.token": masterJoin, "join-agent.token": agentJoin} {
			if err := os.WriteFile(filepath.Join(cfg.DataDir, name), []byte(secret+"\n"), 0o600); err != nil {
				return err
			}
		}
		cfg.Logger.Info("bootstrapped a new cluster", "ca", m.CAHash(), "admin", filepath.Join(cfg.DataDir, "admin.conf"))
	case masters != nil:
		c := api.NewClient(strings.Join(masters, ","), "", api.WithHTTPClient(m.peers))
		if err := c.AddMember(ctx, api.MemberRequest{ID: cfg.Name, RaftAddr: cfg.RaftAdvertise, APIURL: m.URL()}); err != nil {
			return fmt.Errorf("adding this master to the cluster: %w", err)
		}
		if err := os.Remove(joinPendingPath(cfg.DataDir)); err != nil {
			return err
		}
		cfg.Logger.Info("joined the cluster", "masters", masters)
	default:
		m.token = readAdminToken(cfg.DataDir)
		if cfg.Bootstrap && cfg.Token != "" && cfg.Token != m.token {
			// An appliance booted again with an admin token on its command
			// line: whoever controls the boot controls the machine, so this
			// is how a lost admin token is recovered.
			if err := m.ensureAdminToken(ctx, cfg.Token); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureAdminToken adds secret as an admin token unless the state has it.
func (m *Master) ensureAdminToken(ctx context.Context, secret string) error {
	t, err := auth.FromSecret(secret, auth.RoleAdmin, "given at boot", time.Now())
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if err := m.waitLeader(ctx); err != nil {
		return err
	}
	if old, ok := m.Store.State().Tokens[t.ID]; !ok || old.Hash != t.Hash || old.Revoked {
		if ok {
			// Same ID, other secret or revoked: a fresh ID keeps history.
			return fmt.Errorf("admin token %s.… is taken by another or a revoked token; choose another", t.ID)
		}
		if _, err := m.Store.Propose(ctx, []state.Command{state.NewCommand(state.CmdAddToken, t)}); err != nil {
			return err
		}
	}
	m.token = secret
	return nil
}

func joinPendingPath(dataDir string) string { return filepath.Join(dataDir, "join-pending") }

// writeJoinPending records that this master holds its certificate but is
// not a member yet, with the masters to ask.
func writeJoinPending(dataDir string, masters []string) error {
	b, err := json.Marshal(masters)
	if err != nil {
		return err
	}
	return os.WriteFile(joinPendingPath(dataDir), b, 0o600)
}

// readJoinPending returns the masters of an unfinished join, nil if none.
func readJoinPending(dataDir string) ([]string, error) {
	b, err := os.ReadFile(joinPendingPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var masters []string
	if err == nil {
		err = json.Unmarshal(b, &masters)
	}
	if err == nil && len(masters) == 0 {
		err = errors.New("no masters listed")
	}
	if err != nil {
		return nil, fmt.Errorf("unfinished join in %s: %w", joinPendingPath(dataDir), err)
	}
	return masters, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// waitLeader waits until this master's store has elected itself.
func (m *Master) waitLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !m.Store.IsLeader() {
		select {
		case <-ctx.Done():
			return errors.New("no leader elected within 30s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// serve starts the Git sync (on the leader), the API and the controllers.
func (m *Master) serve(ctx context.Context) error {
	cfg := m.cfg
	st := m.Store
	if cfg.Repo != "" {
		var opts []gitops.SourceOption
		if cfg.Branch != "" {
			opts = append(opts, gitops.WithBranch(cfg.Branch))
		}
		if cfg.Path != "" {
			opts = append(opts, gitops.WithPath(cfg.Path))
		}
		if cfg.RepoUsername != "" || cfg.RepoPassword != "" {
			opts = append(opts, gitops.WithAuth(cfg.RepoUsername, cfg.RepoPassword))
		}
		src, err := gitops.NewSource(cfg.Repo, filepath.Join(cfg.DataDir, "repo"), append(opts, gitops.WithLogger(cfg.Logger))...)
		if err != nil {
			return err
		}
		scratch := filepath.Join(cfg.DataDir, "scratch")
		if err := os.MkdirAll(scratch, 0o700); err != nil {
			return err
		}
		var sopts []gitops.SyncerOption
		if cfg.Poll > 0 {
			sopts = append(sopts, gitops.WithInterval(cfg.Poll))
		}
		m.syncer = gitops.NewSyncer(src, st, append(sopts, gitops.WithScratchDir(scratch), gitops.WithHistoryLimit(cfg.RevisionHistory))...)
	}
	serverTLS, err := pki.ServerTLS(m.id.caPEM, m.id.certPEM, m.id.keyPEM)
	if err != nil {
		return err
	}
	heartbeats := &reconcile.Heartbeats{}
	webhook := apiserver.WebhookConfig{Secret: cfg.WebhookSecret, AllowUnsigned: cfg.WebhookAllowUnsigned}
	var syncNow func(context.Context) (api.SyncStatus, error)
	if m.syncer != nil {
		// Git hosts' push webhooks trigger a fetch; the fetch itself
		// decides what changed, so the payload is never read.
		webhook.Trigger = m.syncer.Trigger
		syncNow = m.syncNow
	}
	handler := apiserver.NewServer(apiserver.Config{
		Backend: backend{st, m}, Heartbeats: heartbeats, Logger: cfg.Logger,
		Sync: m.syncStatus, Host: cfg.Host, Power: cfg.Power, Cluster: cluster{m},
		PeerTLS: m.peers.Transport.(*http.Transport).TLSClientConfig,
		NodeTLS: m.nodeTLS,
		Ready:   st.Ready,
		Webhook: webhook,
		SyncNow: syncNow,
		Version: cfg.Version,
	})
	// The dashboard reads through the API handler in process, so the
	// API's authentication and policies are its own (package ui).
	mux := http.NewServeMux()
	mux.Handle("/", handler)
	mux.Handle("/ui/", ui.New(handler, cfg.Logger))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	m.srv = httpserve.New(mux, serverTLS, cfg.Logger, cfg.HTTPLimits)
	ctx, m.cancel = context.WithCancel(ctx)
	m.onClose(func() error {
		m.cancel()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.srv.Shutdown(shutdownCtx)
		m.wg.Wait()
		return nil
	})
	// The files come before the API answers: whoever sees /readyz (a
	// script, `berth master leave`, the CLI) finds them.
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "api-url"), []byte(m.URL()+"\n"), 0o644); err != nil {
		return err
	}
	servers := m.adminServers()
	if m.token != "" {
		if err := writeAdminConfig(cfg.DataDir, servers, m.token, m.id.caPEM); err != nil {
			return err
		}
	}
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		if err := m.srv.ServeTLS(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("API server", "err", err)
		}
	}()
	go func() {
		defer m.wg.Done()
		m.lead(ctx, heartbeats)
	}()
	if m.token != "" {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.keepAdminConfig(ctx, servers)
		}()
	}
	return nil
}

// adminServers lists every master's API for admin.conf, this one first,
// so the CLI fails over to the others.
func (m *Master) adminServers() string {
	others := slices.Sorted(maps.Values(m.Store.State().MasterAPIs))
	servers := []string{m.URL()}
	for _, u := range others {
		if u != m.URL() {
			servers = append(servers, u)
		}
	}
	return strings.Join(servers, ",")
}

// keepAdminConfig rewrites admin.conf when masters join or leave.
func (m *Master) keepAdminConfig(ctx context.Context, written string) {
	for index := m.Store.State().Index; ; {
		var err error
		if index, err = m.Store.Wait(ctx, index); err != nil {
			return
		}
		if servers := m.adminServers(); servers != written {
			if err := writeAdminConfig(m.cfg.DataDir, servers, m.token, m.id.caPEM); err != nil {
				m.cfg.Logger.Warn("rewriting admin.conf", "err", err)
				continue
			}
			written = servers
		}
	}
}

// lead runs the controllers and the Git sync while this master leads.
func (m *Master) lead(ctx context.Context, heartbeats *reconcile.Heartbeats) {
	for {
		leading, changed := m.Store.Leadership()
		var wg sync.WaitGroup
		lctx, cancel := context.WithCancel(ctx)
		if leading {
			heartbeats.Reset() // leadership-scoped: made anew in each term
			loop := &reconcile.Loop{Store: m.Store, Heartbeats: heartbeats, ServiceCIDR: m.cfg.ServiceCIDR,
				Timeouts: m.cfg.NodeTimeouts, Logger: m.cfg.Logger}
			wg.Add(1)
			go func() { defer wg.Done(); loop.Run(lctx) }()
			if m.syncer != nil {
				wg.Add(1)
				go func() { defer wg.Done(); m.syncer.Run(lctx) }()
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
	}
}

func (m *Master) syncStatus() api.SyncStatus {
	if m.syncer == nil {
		return api.SyncStatus{State: "no-repo"}
	}
	return syncStatus(m.syncer.Status())
}

func syncStatus(s gitops.Status) api.SyncStatus {
	return api.SyncStatus{Repo: s.URL, Branch: s.Branch, Path: s.Path, State: string(s.State), LastSync: s.LastSync,
		LastError: s.LastError, Commit: s.Commit}
}

// syncNow is POST /v1/sync's fetch, on a master with a repository.
func (m *Master) syncNow(ctx context.Context) (api.SyncStatus, error) {
	s, err := m.syncer.SyncNow(ctx)
	return syncStatus(s), err
}

// URL is the API's base URL, as others reach it.
func (m *Master) URL() string { return "https://" + m.cfg.Advertise }

// DashboardURL is where this master serves the dashboard (docs/dashboard.md).
func (m *Master) DashboardURL() string { return m.URL() + "/ui/" }

// Name is this master's Raft ID.
func (m *Master) Name() string { return m.cfg.Name }

// AdminToken is the admin token in DATA/admin.conf; "" on a master that
// joined (the bootstrapping master's admin.conf is the one to use).
func (m *Master) AdminToken() string { return m.token }

// CAHash is the cluster CA's fingerprint, what joining masters and agents
// pin (--ca-hash).
func (m *Master) CAHash() string {
	block, _ := pem.Decode(m.id.caPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return pki.Fingerprint(cert)
}

// CAPEM is the cluster CA's certificate.
func (m *Master) CAPEM() []byte { return m.id.caPEM }

// HTTPClient trusts the cluster CA, for clients in the same process.
func (m *Master) HTTPClient() *http.Client {
	tc, _ := pki.ClientTLS(m.id.caPEM, nil, nil, pki.OrgMasters)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
}

// Close stops serving and closes the store.
func (m *Master) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	m.closers = nil
	return errors.Join(errs...)
}

// AdminConfig is DATA/admin.conf: where the API is (every master's,
// comma-separated), the admin token and the CA to trust, for `berth
// --config`.
type AdminConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	CA     string `json:"ca"`
}

func writeAdminConfig(dir, servers, token string, caPEM []byte) error {
	b, err := yaml.Marshal(AdminConfig{Server: servers, Token: token, CA: string(caPEM)})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "admin.conf"), b, 0o600)
}

// readAdminToken finds the admin token a previous start wrote.
func readAdminToken(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "admin.conf"))
	if err != nil {
		return ""
	}
	var c AdminConfig
	if yaml.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Token
}
