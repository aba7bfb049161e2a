package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
)

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// helloRepo is a git repository whose main branch is one commit of
// examples/hello.
func helloRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	if err := os.CopyFS(repo, os.DirFS("../examples/hello")); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "hello")
	return repo
}

// commitEdit replaces old with new in repo's app.yaml and commits that as
// msg.
func commitEdit(t *testing.T, repo, old, new, msg string) {
	t.Helper()
	app := filepath.Join(repo, "app.yaml")
	b, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(app, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "commit", "-q", "-am", msg)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaderAndFollower bootstraps m0 and joins m1 to it with the bootstrap
// master join token; cfg1 is m1's configuration, filled in (name, data dir,
// addresses, join flags). Both are closed at the end of the test.
func leaderAndFollower(t *testing.T, cfg1 *Config) (m0, m1 *Master) {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	data := t.TempDir()
	// Both follow cfg1's repository, if any, as a cluster's masters do.
	m0, err := Start(ctx, Config{Name: "m0", DataDir: data, Listen: "127.0.0.1:0", RaftListen: freeAddr(t), Bootstrap: true, Logger: quiet,
		Repo: cfg1.Repo, Branch: cfg1.Branch, Poll: cfg1.Poll, WebhookSecret: cfg1.WebhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m0.Close() })
	b, err := os.ReadFile(filepath.Join(data, "join-master.token"))
	if err != nil {
		t.Fatal(err)
	}
	cfg1.Name, cfg1.DataDir, cfg1.Listen, cfg1.RaftListen, cfg1.Logger = "m1", t.TempDir(), "127.0.0.1:0", freeAddr(t), quiet
	cfg1.Join, cfg1.Token, cfg1.CAHash = m0.URL(), strings.TrimSpace(string(b)), m0.CAHash()
	if m1, err = Start(ctx, *cfg1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m1.Close() })
	eventually(t, "the follower knowing the leader", func() bool { return cluster{m1}.LeaderURL() == m0.URL() })
	return m0, m1
}

// A master syncs its repository, rejects a bad commit while the last good
// one stays applied, and comes back from its data dir with the same state.
func TestMasterSyncsAndRestarts(t *testing.T) {
	repo := helloRepo(t)

	data := t.TempDir()
	cfg := Config{Name: "m0", DataDir: data, Listen: "127.0.0.1:0", RaftListen: freeAddr(t), Bootstrap: true, Repo: repo, Poll: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(m.URL(), m.AdminToken(), api.WithHTTPClient(m.HTTPClient()))
	eventually(t, "the first revision", func() bool {
		revs, err := c.Revisions(ctx)
		return err == nil && len(revs) == 1 && revs[0].Status == state.RevisionApplied && revs[0].Objects == 4
	})
	eventually(t, "pods pending for lack of nodes", func() bool {
		pods, _, err := c.Pods(ctx, "", nil)
		return err == nil && len(pods) == 3 && pods[0].Status.Reason == "Unschedulable"
	})
	svcs, _, err := c.Services(ctx, nil)
	if err != nil || len(svcs) != 1 || svcs[0].ClusterIP == "" {
		t.Fatalf("services %+v %v", svcs, err)
	}

	commitEdit(t, repo, "replicas: 3", "replicas: three", "break it")
	eventually(t, "the rejected revision", func() bool {
		revs, err := c.Revisions(ctx)
		return err == nil && len(revs) == 2 && revs[0].Status == state.RevisionRejected && revs[1].Status == state.RevisionApplied &&
			len(revs[0].Diagnostics) == 1 && strings.HasPrefix(revs[0].Diagnostics[0].String(), "app.yaml:11:13: error: spec.replicas")
	})
	before := m.Store.State()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	conf, err := os.ReadFile(filepath.Join(data, "admin.conf"))
	if err != nil || !strings.Contains(string(conf), "token: "+m.AdminToken()) {
		t.Fatalf("admin.conf: %s %v", conf, err)
	}
	cfg.Repo = "" // restart without syncing: the state must come from disk alone
	m2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.AdminToken() != m.AdminToken() {
		t.Error("admin token changed across restarts")
	}
	eventually(t, "leadership after restart", m2.Store.IsLeader)
	after := m2.Store.State()
	if len(after.Revisions) != len(before.Revisions) || after.Pods.Len() != before.Pods.Len() || after.Current().Commit != before.Current().Commit {
		t.Fatalf("state after restart differs: %d revisions %d pods, want %d %d", len(after.Revisions), after.Pods.Len(), len(before.Revisions), before.Pods.Len())
	}
}

// A data dir with Raft state but without the master's identity (from a
// berth before TLS, or a join cut short) is refused, never bootstrapped
// over.
func TestMasterRefusesStateWithoutIdentity(t *testing.T) {
	data := t.TempDir()
	cfg := Config{Name: "m0", DataDir: data, Listen: "127.0.0.1:0", RaftListen: freeAddr(t), Bootstrap: true, Logger: slog.New(slog.DiscardHandler)}
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	os.RemoveAll(filepath.Join(data, "tls"))
	if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "holds Raft state but no master identity") {
		t.Fatalf("Start over Raft state without identity: %v", err)
	}
}

// An agent joins with a certificate request: the certificate it gets is
// for its own key, with the name and organization the master decides, and
// no private key travels. A join without a valid request, or under the
// name of a node that is up, is a 400.
func TestAgentJoinSignsTheAgentsKey(t *testing.T) {
	data := t.TempDir()
	m, err := Start(context.Background(), Config{Name: "m0", DataDir: data, Listen: "127.0.0.1:0", RaftListen: freeAddr(t), Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	token, err := os.ReadFile(filepath.Join(data, "join-agent.token"))
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(m.URL(), strings.TrimSpace(string(token)), api.WithHTTPClient(m.HTTPClient()))
	ctx := context.Background()

	keyPEM, csrPEM, err := pki.NewKeyAndCSR("master-0") // asks for a master's name: ignored
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.JoinAgent(ctx, api.JoinRequest{Name: "node-1", Hosts: []string{"127.0.0.1"}, CSRPEM: csrPEM})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(resp.CertPEM, keyPEM)
	if err != nil {
		t.Fatalf("the certificate is not for the agent's key: %v", err)
	}
	if cert := pair.Leaf; cert.Subject.CommonName != "node-1" || !slices.Equal(cert.Subject.Organization, []string{pki.OrgNodes}) {
		t.Fatalf("subject %v", cert.Subject)
	}
	// Once node-1 is up, nobody else can join under its name.
	if _, err := m.Store.Propose(ctx, []state.Command{state.NewCommand(state.CmdRegisterNode, state.Node{Name: "node-1"}),
		state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "node-1", Ready: true, Time: time.Now()})}); err != nil {
		t.Fatal(err)
	}
	var e *api.Error
	if _, err := c.JoinAgent(ctx, api.JoinRequest{Name: "node-1", Hosts: []string{"127.0.0.1"}, CSRPEM: csrPEM}); !errors.As(err, &e) ||
		e.Code != http.StatusBadRequest || !strings.Contains(err.Error(), `node "node-1" is registered and ready`) {
		t.Errorf("joining as a node that is up: %v", err)
	}
	for _, bad := range []api.JoinRequest{
		{Name: "node-2", Hosts: []string{"127.0.0.1"}},
		{Name: "node-2", Hosts: []string{"127.0.0.1"}, CSRPEM: resp.CertPEM},
	} {
		if _, err := c.JoinAgent(ctx, bad); !errors.As(err, &e) || e.Code != http.StatusBadRequest || !strings.Contains(err.Error(), "csr") && !strings.Contains(err.Error(), "CERTIFICATE REQUEST") {
			t.Errorf("join with CSR %q: %v, want 400 about the request", bad.CSRPEM, err)
		}
	}
}

// joinAs asks for a master's certificate and the cluster secret with
// token, as a joining master does.
func joinAs(t *testing.T, m *Master, token, name string) (api.JoinResponse, error) {
	t.Helper()
	_, csrPEM, err := pki.NewKeyAndCSR(name)
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(m.URL(), token, api.WithHTTPClient(m.HTTPClient()))
	return c.JoinMaster(context.Background(), api.JoinRequest{Name: name, Hosts: []string{"127.0.0.1"}, CSRPEM: csrPEM})
}

// refused checks that a join was answered 401 saying want, with neither a
// certificate nor the cluster secret.
func refused(t *testing.T, what string, resp api.JoinResponse, err error, want string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Code != http.StatusUnauthorized || !strings.Contains(e.Message, want) {
		t.Errorf("%s: %v, want 401 saying %q", what, err, want)
	}
	if resp.ClusterSecret != "" || len(resp.CertPEM) > 0 {
		t.Errorf("%s: a refused join got a certificate or the cluster secret", what)
	}
}

// The join tokens a master bootstraps with expire after 24 hours; the
// master join token is good for one join, the agent join token for many.
// A used, expired or revoked master join token is refused with 401, and
// gives neither a certificate nor the cluster secret.
func TestMasterJoinTokenLimits(t *testing.T) {
	data := t.TempDir()
	m, err := Start(context.Background(), Config{Name: "m0", DataDir: data, Listen: "127.0.0.1:0", RaftListen: freeAddr(t), Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	admin := api.NewClient(m.URL(), m.AdminToken(), api.WithHTTPClient(m.HTTPClient()))
	tokens, err := admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		want := auth.DefaultLimits(tok.Role)
		if tok.Uses != want.Uses || want.TTL > 0 && !tok.Expires.Equal(tok.Created.Add(want.TTL)) || want.TTL == 0 && !tok.Expires.IsZero() {
			t.Errorf("bootstrap %s token: uses %d, expires %v (created %v); want %+v", tok.Role, tok.Uses, tok.Expires, tok.Created, want)
		}
	}

	b, err := os.ReadFile(filepath.Join(data, "join-master.token"))
	if err != nil {
		t.Fatal(err)
	}
	masterJoin := strings.TrimSpace(string(b))
	_, csrPEM, err := pki.NewKeyAndCSR("m1")
	if err != nil {
		t.Fatal(err)
	}
	first := api.JoinRequest{Name: "m1", Hosts: []string{"127.0.0.1"}, CSRPEM: csrPEM}
	joiner := api.NewClient(m.URL(), masterJoin, api.WithHTTPClient(m.HTTPClient()))
	if resp, err := joiner.JoinMaster(ctx, first); err != nil || resp.ClusterSecret == "" {
		t.Fatalf("first join with the master join token: %v", err)
	}
	// The same request again, as after an answer lost to a leader change,
	// is the same join: answered, and counted once.
	if resp, err := joiner.JoinMaster(ctx, first); err != nil || resp.ClusterSecret == "" {
		t.Fatalf("the first join sent again: %v", err)
	}
	resp, err := joinAs(t, m, masterJoin, "m2")
	refused(t, "second join with the single-use token", resp, err, "token has been used up")

	// A token whose 24 hours have passed (made as if a day and more ago).
	expired, old, err := auth.New(auth.RoleMasterJoin, "old", auth.DefaultLimits(auth.RoleMasterJoin), time.Now().Add(-25*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Store.Propose(ctx, []state.Command{state.NewCommand(state.CmdAddToken, old)}); err != nil {
		t.Fatal(err)
	}
	resp, err = joinAs(t, m, expired, "m3")
	refused(t, "join with an expired token", resp, err, "token has expired")

	created, err := admin.CreateToken(ctx, api.TokenRequest{Role: auth.RoleMasterJoin})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeToken(ctx, created.Token.ID); err != nil {
		t.Fatal(err)
	}
	resp, err = joinAs(t, m, created.Secret, "m4")
	refused(t, "join with a revoked token", resp, err, "token has been revoked")
}

// Joins race with one single-use master join token, through the leader and
// through a follower at once: exactly one gets the cluster secret, every
// other is a 401 (never a 503 that a client would retry).
func TestMasterJoinTokenRace(t *testing.T) {
	ctx := context.Background()
	m0, m1 := leaderAndFollower(t, &Config{})

	admin := api.NewClient(m0.URL(), m0.AdminToken(), api.WithHTTPClient(m0.HTTPClient()))
	once, err := admin.CreateToken(ctx, api.TokenRequest{Role: auth.RoleMasterJoin})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the follower holding the new token", func() bool { _, ok := m1.Store.State().Tokens[once.Token.ID]; return ok })

	const perMaster = 4
	type result struct {
		resp api.JoinResponse
		err  error
	}
	results := make(chan result, 2*perMaster)
	var wg sync.WaitGroup
	for i := range 2 * perMaster {
		wg.Go(func() {
			m := []*Master{m0, m1}[i%2]
			resp, err := joinAs(t, m, once.Secret, fmt.Sprintf("new-%d", i))
			results <- result{resp, err}
		})
	}
	wg.Wait()
	close(results)
	won := 0
	for r := range results {
		if r.err == nil && r.resp.ClusterSecret != "" {
			won++
			continue
		}
		refused(t, "a losing join", r.resp, r.err, "token")
	}
	if won != 1 {
		t.Fatalf("%d joins got the cluster secret with one single-use token", won)
	}
	tokens, err := admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.ID == once.Token.ID && tok.Used != 1 {
			t.Fatalf("the token counts %d uses", tok.Used)
		}
	}
}
