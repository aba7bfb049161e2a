package gitops

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/store"
)

// upstream is a config repository the tests commit to with the git CLI
// (test-only; the code under test uses go-git alone).
type upstream struct {
	t   *testing.T
	dir string
	env []string
	n   int // commits made, to give each a distinct time
}

func newUpstream(t *testing.T, branch string) *upstream {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git CLI not installed")
	}
	home := t.TempDir()
	u := &upstream{t: t, dir: filepath.Join(t.TempDir(), "config"), env: append(os.Environ(),
		"HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Ada Lovelace", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Lovelace", "GIT_COMMITTER_EMAIL=ada@example.com",
	)}
	u.git("init", "-q", "-b", branch, u.dir)
	return u
}

func (u *upstream) git(args ...string) string {
	u.t.Helper()
	cmd := exec.Command("git", args...)
	if args[0] != "init" {
		cmd.Dir = u.dir
	}
	u.n++
	date := time.Date(2025, 1, 1, 0, 0, u.n, 0, time.UTC).Format(time.RFC3339)
	cmd.Env = slices.Concat(u.env, []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date})
	out, err := cmd.CombinedOutput()
	if err != nil {
		u.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// write writes files (path relative to the repo -> content).
func (u *upstream) write(files map[string]string) {
	u.t.Helper()
	for p, c := range files {
		dst := filepath.Join(u.dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			u.t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(c), 0o644); err != nil {
			u.t.Fatal(err)
		}
	}
}

// copyExample copies examples/hello into the repo at dir ("" for the root).
func (u *upstream) copyExample(dir string) {
	u.t.Helper()
	dst := filepath.Join(u.dir, filepath.FromSlash(dir))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.CopyFS(dst, os.DirFS("../examples/hello")); err != nil {
		u.t.Fatal(err)
	}
}

// edit replaces old with new in one file, failing if old is absent.
func (u *upstream) edit(p, old, new string) {
	u.t.Helper()
	dst := filepath.Join(u.dir, filepath.FromSlash(p))
	b, err := os.ReadFile(dst)
	if err != nil {
		u.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		u.t.Fatalf("%s does not contain %q", p, old)
	}
	if err := os.WriteFile(dst, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// commit commits everything and returns the new head.
func (u *upstream) commit(msg string) string {
	u.t.Helper()
	u.git("add", "-A")
	u.git("commit", "-q", "-m", msg)
	return u.head()
}

func (u *upstream) head() string { u.t.Helper(); return u.git("rev-parse", "HEAD") }

// fakeStore is the Proposer: it records batches and applies them with the
// real state.Apply, as the FSM would.
type fakeStore struct {
	mu      sync.Mutex
	state   state.State
	batches [][]state.Command
	err     error // returned by Propose when set
	ch      chan struct{}
}

func newFakeStore() *fakeStore { return &fakeStore{ch: make(chan struct{}, 100)} }

func (f *fakeStore) Propose(_ context.Context, batch []state.Command) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if err := state.Apply(&f.state, batch); err != nil {
		return 0, err
	}
	f.state.Index++
	f.batches = append(f.batches, batch)
	if batch[0].Type == state.CmdAddRevision { // not the marks that follow
		f.ch <- struct{}{}
	}
	return f.state.Index, nil
}

func (f *fakeStore) snapshot() *state.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Apply never writes into the state it starts from, so a copy of the
	// struct is a snapshot.
	s := f.state
	return &s
}

// State is what the syncer reads: its last recorded commit.
func (f *fakeStore) State() *state.State { return f.snapshot() }

func (f *fakeStore) revisions() []state.Revision { return f.snapshot().Revisions }

func (f *fakeStore) lastCommit() string {
	r := f.revisions()
	if len(r) == 0 {
		return ""
	}
	return r[len(r)-1].Commit
}

// waitBatch waits for the next revision proposed.
func (f *fakeStore) waitBatch(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-f.ch:
	case <-time.After(d):
		t.Fatalf("no proposal within %s", d)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestSyncer makes a Source cloning url into a temp dir and a syncer
// proposing to a fake store.
func newTestSyncer(t *testing.T, url string, opts ...SourceOption) (*Syncer, *fakeStore) {
	t.Helper()
	src, err := NewSource(url, filepath.Join(t.TempDir(), "clone"), append([]SourceOption{WithLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeStore()
	return NewSyncer(src, fs, WithScratchDir(t.TempDir()), WithDebounce(10*time.Millisecond)), fs
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// digests maps object IDs to digests.
func digests(r state.Revision) map[string]string {
	m := map[string]string{}
	for _, o := range r.Objects {
		m[o.ID.String()] = o.Digest
	}
	return m
}

// The master hands its store to NewSyncer.
var _ Proposer = (*store.Store)(nil)
