// Package appliance is the master: it wires the replicated store, the API,
// the Git source and the leader-only controllers into one process.
package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/store"
	"github.com/berth/berth/gitops"
	"github.com/berth/berth/reconcile"
)

// Config is one master's configuration.
type Config struct {
	DataDir string
	// Listen is the API address, e.g. ":7443".
	Listen string
	// RaftAddr is the Raft transport's address; peers dial it.
	RaftAddr string
	// Repo is the config repository (path, file:// or http(s)://); empty
	// runs a master with no desired state, which says so in /v1/status.
	Repo, Branch, Path string
	Poll               time.Duration
	ServiceCIDR        netip.Prefix
	NodeTimeouts       reconcile.NodeTimeouts
	Logger             *slog.Logger
	// Host and Power are the appliance image's (see api.Config).
	Host  *api.HostStatus
	Power func(action string) error
}

// Master is a running master.
type Master struct {
	cfg    Config
	Store  *store.Store
	syncer *gitops.Syncer
	token  string
	ln     net.Listener
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start opens (or bootstraps) the store in cfg.DataDir and serves the API.
func Start(ctx context.Context, cfg Config) (*Master, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = reconcile.DefaultServiceCIDR
	}
	if cfg.NodeTimeouts == (reconcile.NodeTimeouts{}) {
		cfg.NodeTimeouts = reconcile.DefaultNodeTimeouts
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	token, err := adminToken(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(store.Config{DataDir: cfg.DataDir, NodeID: "master-0", BindAddr: cfg.RaftAddr, Bootstrap: true, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	m := &Master{cfg: cfg, Store: st, token: token}
	if cfg.Repo != "" {
		var opts []gitops.SourceOption
		if cfg.Branch != "" {
			opts = append(opts, gitops.WithBranch(cfg.Branch))
		}
		if cfg.Path != "" {
			opts = append(opts, gitops.WithPath(cfg.Path))
		}
		src, err := gitops.NewSource(cfg.Repo, filepath.Join(cfg.DataDir, "repo"), append(opts, gitops.WithLogger(cfg.Logger))...)
		if err != nil {
			st.Close()
			return nil, err
		}
		scratch := filepath.Join(cfg.DataDir, "scratch")
		if err := os.MkdirAll(scratch, 0o700); err != nil {
			st.Close()
			return nil, err
		}
		var sopts []gitops.SyncerOption
		if cfg.Poll > 0 {
			sopts = append(sopts, gitops.WithInterval(cfg.Poll))
		}
		m.syncer = gitops.NewSyncer(src, st, append(sopts, gitops.WithScratchDir(scratch))...)
	}
	heartbeats := &reconcile.Heartbeats{}
	handler := api.NewServer(api.Config{
		Backend: st, Heartbeats: heartbeats, AdminToken: token, Logger: cfg.Logger,
		Sync: m.syncStatus, Host: cfg.Host, Power: cfg.Power,
		Ready: func() error {
			if !st.IsLeader() {
				return errors.New("no leader yet")
			}
			return nil
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/", handler)
	if m.syncer != nil {
		// Git hosts' push webhooks: any POST triggers a fetch. The fetch
		// itself decides what changed, so the payload need not be trusted.
		mux.HandleFunc("POST /v1/webhook", func(w http.ResponseWriter, r *http.Request) {
			m.syncer.Trigger()
			w.WriteHeader(http.StatusAccepted)
		})
	}
	m.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, err
	}
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, m.cancel = context.WithCancel(ctx)
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("API server", "err", err)
		}
	}()
	go func() {
		defer m.wg.Done()
		m.lead(ctx, heartbeats)
	}()
	if err := writeAdminConfig(cfg.DataDir, m.URL(), token); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// lead runs the controllers and the Git sync while this master leads.
func (m *Master) lead(ctx context.Context, heartbeats *reconcile.Heartbeats) {
	for {
		leading, changed := m.Store.Leadership()
		var wg sync.WaitGroup
		lctx, cancel := context.WithCancel(ctx)
		if leading {
			loop := &reconcile.Loop{Store: m.Store, Heartbeats: heartbeats, ServiceCIDR: m.cfg.ServiceCIDR,
				Timeouts: m.cfg.NodeTimeouts, Logger: m.cfg.Logger}
			wg.Add(1)
			go func() { defer wg.Done(); loop.Run(lctx) }()
			if m.syncer != nil {
				wg.Add(1)
				go func() { defer wg.Done(); m.syncer.Run(lctx, gitops.LastCommit(m.Store.State())) }()
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
	s := m.syncer.Status()
	return api.SyncStatus{Repo: s.URL, Branch: s.Branch, State: string(s.State), LastSync: s.LastSync, LastError: s.LastError}
}

// URL is the API's base URL.
func (m *Master) URL() string {
	addr := m.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// AdminToken is the token in DATA/admin.conf.
func (m *Master) AdminToken() string { return m.token }

// Close stops serving and closes the store.
func (m *Master) Close() error {
	m.cancel()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.srv.Shutdown(shutdownCtx)
	m.wg.Wait()
	return m.Store.Close()
}

// adminToken reads DATA/admin-token, creating it on first start.
func adminToken(dir string) (string, error) {
	path := filepath.Join(dir, "admin-token")
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	return token, os.WriteFile(path, []byte(token+"\n"), 0o600)
}

// writeAdminConfig writes DATA/admin.conf for `berth --config`.
func writeAdminConfig(dir, url, token string) error {
	return os.WriteFile(filepath.Join(dir, "admin.conf"), fmt.Appendf(nil, "server: %s\ntoken: %s\n", url, token), 0o600)
}
