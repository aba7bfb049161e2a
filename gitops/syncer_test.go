package gitops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/diag"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TestLifecycle walks the operator's story: first sync, a change, a bad
// commit, its fix, and a rollback by git revert.
func TestLifecycle(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("hello: first version\n\nWith a body.")
	s, fs := newTestSyncer(t, up.dir)
	ctx := ctxT(t)

	// Initial sync: one applied revision with the example's 4 objects.
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	revs := fs.revisions()
	if len(revs) != 1 {
		t.Fatalf("revisions = %d, want 1", len(revs))
	}
	r1 := revs[0]
	if r1.Commit != c1 || r1.Status != state.RevisionApplied || len(r1.Objects) != 4 {
		t.Fatalf("first revision: commit %s status %s objects %d; diagnostics %v", r1.Commit, r1.Status, len(r1.Objects), r1.Diagnostics)
	}
	if r1.Author != "Ada Lovelace <ada@example.com>" || r1.Message != "hello: first version\n\nWith a body." ||
		!r1.Time.Equal(time.Date(2025, 1, 1, 0, 0, 3, 0, time.UTC)) {
		t.Errorf("commit metadata: %q %q %v", r1.Author, r1.Message, r1.Time)
	}
	// Seen before it was validated, committed after.
	if r1.Seen.IsZero() || r1.Committed.Before(r1.Seen) || time.Since(r1.Seen) > time.Minute {
		t.Errorf("seen %v, committed %v", r1.Seen, r1.Committed)
	}
	wantIDs := []string{"ConfigMap hello/hello-config", "Deployment hello/hello", "Namespace hello", "Service hello/hello"}
	if got := slices.Sorted(maps.Keys(digests(r1))); !slices.Equal(got, wantIDs) {
		t.Errorf("objects = %v, want %v", got, wantIDs)
	}
	for _, o := range r1.Objects {
		sum := sha256.Sum256(o.JSON)
		if o.Digest != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: digest %s is not sha256 of its JSON", o.ID, o.Digest)
		}
	}
	// Digests are stable: loading the same commit again gives the same.
	again, err := s.Revision(c1)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(digests(*again), digests(r1)) {
		t.Errorf("digests differ between two loads of one commit:\n%v\n%v", digests(*again), digests(r1))
	}
	// Nothing new: nothing proposed.
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(fs.revisions()); n != 1 {
		t.Fatalf("unchanged head recorded again: %d revisions", n)
	}
	if st := s.Status(); st.State != Synced || st.Commit != c1 || st.CommitStatus != state.RevisionApplied || st.Branch != "main" || st.LastSync.IsZero() {
		t.Errorf("status = %+v", st)
	}

	// A valid change: new applied revision, the previous superseded.
	up.edit("app.yaml", `value: "1"`, `value: "2"`)
	c2 := up.commit("hello: version 2")
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	st := fs.snapshot()
	if len(st.Revisions) != 2 || st.Revisions[0].Status != state.RevisionSuperseded || st.Current().Commit != c2 {
		t.Fatalf("after c2: %+v", summary(st))
	}
	d1, d2 := digests(r1), digests(*st.Current())
	if d1["Deployment hello/hello"] == d2["Deployment hello/hello"] || d1["ConfigMap hello/hello-config"] != d2["ConfigMap hello/hello-config"] {
		t.Errorf("only the Deployment changed, digests say otherwise:\n%v\n%v", d1, d2)
	}

	// An invalid commit is rejected with positions; c2 keeps running.
	up.edit("app.yaml", "replicas: 3", `replicas: "three"`)
	c3 := up.commit("hello: oops")
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	st = fs.snapshot()
	r3 := st.Revisions[len(st.Revisions)-1]
	if r3.Commit != c3 || r3.Status != state.RevisionRejected || len(r3.Objects) != 0 {
		t.Fatalf("bad commit: %+v", summary(st))
	}
	if st.Current().Commit != c2 {
		t.Fatalf("applied revision moved to %s on a rejected commit", st.Current().Commit)
	}
	d := firstError(r3.Diagnostics)
	if d == nil || d.File != "app.yaml" || d.Line != 11 || d.Column != 13 {
		t.Fatalf("diagnostics = %v, want an error at app.yaml:11:13", r3.Diagnostics)
	}
	if s.Status().CommitStatus != state.RevisionRejected || s.Status().State != Synced {
		t.Errorf("status after rejection = %+v", s.Status())
	}
	// Each recorded commit is an event: the rejected one with its first
	// error, where `berth get events` and `describe` show it.
	var applied, rejected *state.Event
	for i, e := range st.Events {
		switch {
		case e.Object == (state.ObjectRef{Kind: "Revision", Name: c2}):
			applied = &st.Events[i]
		case e.Object == (state.ObjectRef{Kind: "Revision", Name: c3}):
			rejected = &st.Events[i]
		}
	}
	if applied == nil || applied.Type != state.EventNormal || applied.Reason != "Applied" || !strings.Contains(applied.Message, "hello: version 2") {
		t.Errorf("event of the applied commit = %+v", applied)
	}
	if rejected == nil || rejected.Type != state.EventWarning || rejected.Reason != "Rejected" || !strings.Contains(rejected.Message, "app.yaml:11:13") ||
		rejected.Source.Component != EventComponent {
		t.Errorf("event of the rejected commit = %+v, want a Warning with its first error", rejected)
	}

	// Fixing it by reverting the bad commit: applied again, same digests
	// as c2, so the rollout controller finds c2's rollout.
	up.git("revert", "--no-edit", "HEAD")
	c4 := up.head()
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	st = fs.snapshot()
	if st.Current().Commit != c4 || !maps.Equal(digests(*st.Current()), d2) {
		t.Fatalf("after revert of the bad commit: %+v", summary(st))
	}

	// Rolling back c2 by reverting it (on top of the fix): digests equal c1's.
	up.git("revert", "--no-edit", c2)
	c5 := up.head()
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	st = fs.snapshot()
	if st.Current().Commit != c5 || !maps.Equal(digests(*st.Current()), d1) {
		t.Fatalf("after git revert: %+v\n%v\n%v", summary(st), digests(*st.Current()), d1)
	}
	want := []state.RevisionStatus{state.RevisionSuperseded, state.RevisionSuperseded, state.RevisionRejected, state.RevisionSuperseded, state.RevisionApplied}
	if got := statuses(st); !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
}

// Several commits between two syncs: only the head is recorded.
func TestOnlyHeadRecorded(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	ctx := ctxT(t)
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	up.edit("app.yaml", "replicas: 3", `replicas: "three"`)
	up.commit("broken")
	up.edit("app.yaml", `replicas: "three"`, "replicas: 2")
	head := up.commit("fixed")
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	st := fs.snapshot()
	if len(st.Revisions) != 2 || st.Current().Commit != head {
		t.Fatalf("revisions: %+v", summary(st))
	}
}

// Run starts from the store's last commit and does not record it again.
func TestRunStartsFromLastCommit(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	if _, err := fs.Propose(ctxT(t), []state.Command{state.NewCommand(state.CmdAddRevision, state.Revision{Commit: c1, Status: state.RevisionApplied})}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, func() bool { return s.syncs.Load() >= 1 })
	if n := len(fs.revisions()); n != 1 {
		t.Fatalf("known head recorded again (%d revisions)", n)
	}
	if err := s.Run(ctx); err == nil {
		t.Error("second concurrent Run did not fail")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != SyncStopped || st.Commit != c1 {
		t.Errorf("status after stop = %+v", st)
	}
}

// A state that lost the head (a snapshot restored from before it) gets the
// head back at the next sync: what was recorded is read from the store,
// not remembered.
func TestHeadReturnsAfterRestore(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	go s.Run(ctx)
	fs.waitBatch(t, 10*time.Second)
	fs.mu.Lock()
	fs.state.Revisions = nil // as after restoring an older snapshot
	fs.mu.Unlock()
	s.Trigger()
	fs.waitBatch(t, 10*time.Second)
	if fs.lastCommit() != c1 || len(fs.revisions()) != 1 {
		t.Fatalf("after the restore: %d revisions, last %s; want the head %s back", len(fs.revisions()), fs.lastCommit(), c1)
	}
}

// Trigger syncs without waiting for the poll, and coalesces bursts.
func TestTrigger(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	s.interval = time.Hour
	s.debounce = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	fs.waitBatch(t, 10*time.Second)
	waitFor(t, func() bool { return s.syncs.Load() == 1 })

	up.edit("app.yaml", `value: "1"`, `value: "2"`)
	c2 := up.commit("two")
	start := time.Now()
	for range 20 {
		s.Trigger()
	}
	fs.waitBatch(t, 5*time.Second)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("triggered sync took %s", took)
	}
	if fs.lastCommit() != c2 {
		t.Fatalf("last commit = %s, want %s", fs.lastCommit(), c2)
	}
	time.Sleep(300 * time.Millisecond) // let any extra sync show itself
	if n := s.syncs.Load(); n != 2 {
		t.Errorf("20 triggers in a burst gave %d syncs after the first, want 1", n-1)
	}
	cancel()
	<-done
}

// The poll interval alone picks up a new commit.
func TestPoll(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	s.interval = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	go s.Run(ctx)
	fs.waitBatch(t, 10*time.Second)
	up.edit("app.yaml", `value: "1"`, `value: "2"`)
	c2 := up.commit("two")
	fs.waitBatch(t, 5*time.Second)
	if fs.lastCommit() != c2 {
		t.Fatalf("last commit = %s, want %s", fs.lastCommit(), c2)
	}
}

// A force-push rewrites history: the new head is recorded, even when it is
// an older commit.
func TestForcePush(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("one")
	up.edit("app.yaml", `value: "1"`, `value: "2"`)
	up.commit("two")
	s, fs := newTestSyncer(t, up.dir)
	ctx := ctxT(t)
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Rewrite: drop "two", commit something else instead.
	up.git("reset", "-q", "--hard", c1)
	up.edit("app.yaml", `value: "1"`, `value: "3"`)
	c2b := up.commit("two, rewritten")
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if fs.lastCommit() != c2b || fs.snapshot().Current().Commit != c2b {
		t.Fatalf("after force-push: %+v", summary(fs.snapshot()))
	}
	// Back to c1: the branch says c1 should run again.
	up.git("reset", "-q", "--hard", c1)
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	st := fs.snapshot()
	if st.Current().Commit != c1 || len(st.Revisions) != 3 {
		t.Fatalf("after reset to c1: %+v", summary(st))
	}
	r1, err := s.Revision(c1)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(digests(*r1), digests(*st.Current())) || maps.Equal(digests(st.Revisions[0]), digests(*st.Current())) {
		t.Error("digests do not follow the content")
	}
}

// An unreachable remote is an error in Status; what was recorded stays,
// and the clone still serves the last commit. When it returns, syncing
// resumes.
func TestUnreachableRemote(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	ctx := ctxT(t)
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	moved := up.dir + ".away"
	if err := os.Rename(up.dir, moved); err != nil {
		t.Fatal(err)
	}
	err := s.sync(ctx)
	if err == nil {
		t.Fatal("sync of a removed remote succeeded")
	}
	st := s.Status()
	if st.State != SyncError || st.LastError == "" || st.LastErrorTime.IsZero() || st.Commit != c1 {
		t.Fatalf("status = %+v", st)
	}
	if !strings.Contains(st.LastError, up.dir) {
		t.Errorf("error does not name the remote: %s", st.LastError)
	}
	if got := fs.snapshot(); len(got.Revisions) != 1 || got.Current().Commit != c1 {
		t.Fatalf("state changed: %+v", summary(got))
	}
	if r, err := s.Revision(c1); err != nil || len(r.Objects) != 4 {
		t.Fatalf("clone lost the last commit: %v", err)
	}
	// Back again, with a new commit.
	if err := os.Rename(moved, up.dir); err != nil {
		t.Fatal(err)
	}
	up.edit("app.yaml", `value: "1"`, `value: "2"`)
	c2 := up.commit("two")
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != Synced || st.LastError != "" || st.Commit != c2 {
		t.Fatalf("status after recovery = %+v", st)
	}
}

// A remote that refuses connections fails fast with a clear error.
func TestUnreachableHTTP(t *testing.T) {
	s, fs := newTestSyncer(t, "http://127.0.0.1:1/config.git", WithBranch("main"))
	err := s.sync(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("err = %v", err)
	}
	if len(fs.revisions()) != 0 || s.Status().State != SyncError {
		t.Fatalf("status = %+v", s.Status())
	}
}

// A failed proposal is retried on the next sync.
func TestProposeErrorRetries(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("one")
	s, fs := newTestSyncer(t, up.dir)
	fs.err = errors.New("not the leader")
	if err := s.sync(ctxT(t)); err == nil || !strings.Contains(err.Error(), "not the leader") {
		t.Fatalf("err = %v", err)
	}
	if st := s.Status(); st.State != SyncError || st.Commit != "" {
		t.Fatalf("status = %+v", st)
	}
	fs.err = nil
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if fs.lastCommit() != c1 {
		t.Fatal("not retried")
	}
}

// --path loads one directory; positions stay relative to the repo root.
func TestSubPath(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("deploy/hello")
	up.write(map[string]string{
		"other/broken.yaml": "kind: [",
		"README.md":         "# config\n",
	})
	c1 := up.commit("one")
	s, fs := newTestSyncer(t, up.dir, WithPath("./deploy/hello/"))
	ctx := ctxT(t)
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	r := fs.revisions()
	if len(r) != 1 || r[0].Commit != c1 || r[0].Status != state.RevisionApplied || len(r[0].Objects) != 4 {
		t.Fatalf("revisions = %+v", summary(fs.snapshot()))
	}
	up.edit("deploy/hello/app.yaml", "replicas: 3", `replicas: "three"`)
	up.commit("oops")
	if err := s.sync(ctx); err != nil {
		t.Fatal(err)
	}
	r = fs.revisions()
	d := firstError(r[1].Diagnostics)
	if r[1].Status != state.RevisionRejected || d == nil || d.Position.String() != "deploy/hello/app.yaml:11:13" {
		t.Fatalf("diagnostics = %v", r[1].Diagnostics)
	}

	// A path the commit lacks is a rejected revision, not a sync error.
	s2, fs2 := newTestSyncer(t, up.dir, WithPath("nowhere"))
	if err := s2.sync(ctx); err != nil {
		t.Fatal(err)
	}
	r = fs2.revisions()
	if len(r) != 1 || r[0].Status != state.RevisionRejected || firstError(r[0].Diagnostics).File != "nowhere" {
		t.Fatalf("missing path: %+v", r)
	}

	for _, bad := range []string{"../x", "/abs", "a/../../b"} {
		if _, err := NewSource(up.dir, t.TempDir(), WithPath(bad)); err == nil {
			t.Errorf("WithPath(%q) accepted", bad)
		}
	}
}

// The root's berth.yaml applies to a source path, as `berth validate
// deploy/` applies it: the masters extract it with the path.
func TestSubPathReadsRootBerthYAML(t *testing.T) {
	up := newUpstream(t, "main")
	up.write(map[string]string{
		"berth.yaml":        "ignoreKinds: [Thing]\n",
		"deploy/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
		"deploy/thing.yaml": "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n",
	})
	c1 := up.commit("one")
	s, fs := newTestSyncer(t, up.dir, WithPath("deploy"))
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	r := fs.revisions()
	if len(r) != 1 || r[0].Commit != c1 || r[0].Status != state.RevisionApplied || len(r[0].Objects) != 1 {
		t.Fatalf("revisions = %+v %v", summary(fs.snapshot()), r[0].Diagnostics)
	}
}

// file:// URLs, a named branch, the remote HEAD's branch, and no git
// binary at runtime.
func TestFileURLAndBranches(t *testing.T) {
	up := newUpstream(t, "trunk")
	up.copyExample("")
	c1 := up.commit("one")
	up.git("checkout", "-q", "-b", "release")
	up.edit("app.yaml", `value: "1"`, `value: "2"`)
	c2 := up.commit("release")
	up.git("checkout", "-q", "trunk")

	// From here on go-git must do without the git CLI.
	t.Setenv("PATH", t.TempDir())

	s, fs := newTestSyncer(t, "file://"+up.dir)
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if fs.lastCommit() != c1 || s.Status().Branch != "trunk" {
		t.Fatalf("default branch: commit %s, status %+v", fs.lastCommit(), s.Status())
	}
	s, fs = newTestSyncer(t, "file://"+up.dir, WithBranch("release"))
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if fs.lastCommit() != c2 {
		t.Fatalf("release branch: commit %s, want %s", fs.lastCommit(), c2)
	}
	s, _ = newTestSyncer(t, "file://"+up.dir, WithBranch("nope"))
	if err := s.sync(ctxT(t)); err == nil || !strings.Contains(err.Error(), `branch "nope" not found`) {
		t.Fatalf("missing branch: %v", err)
	}
	if _, err := NewSource("ssh://git@example.com/x.git", t.TempDir()); err == nil {
		t.Error("ssh URL accepted")
	}
	for _, b := range []string{"a..b", "bad:name", "x y", "-", "refs/heads/"} {
		if _, err := NewSource(up.dir, t.TempDir(), WithBranch(b)); err == nil {
			t.Errorf("WithBranch(%q) accepted", b)
		}
	}
}

// A second Source on the same directory reuses the clone: the fetch is
// incremental and the objects are there before it.
func TestReuseClone(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("one")
	dir := filepath.Join(t.TempDir(), "clone")
	src, err := NewSource(up.dir, dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if h, err := src.Fetch(ctxT(t)); err != nil || h != c1 {
		t.Fatalf("fetch = %s, %v", h, err)
	}
	src2, err := NewSource(up.dir, dir, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src2.CommitInfo(c1); err != nil {
		t.Fatalf("reopened clone lacks %s: %v", c1, err)
	}
	up.edit("app.yaml", `value: "1"`, `value: "2"`)
	c2 := up.commit("two")
	if h, err := src2.Fetch(ctxT(t)); err != nil || h != c2 {
		t.Fatalf("fetch = %s, %v", h, err)
	}
}

// Extract writes symlinks as links (created after every file) and the
// loader reads through them; executables and non-spec files come through.
func TestExtractSymlinks(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("base")
	if err := os.Rename(filepath.Join(up.dir, "base/namespace.yaml"), filepath.Join(up.dir, "namespace.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../namespace.txt", filepath.Join(up.dir, "base/namespace.yaml")); err != nil {
		t.Fatal(err)
	}
	up.write(map[string]string{"run.sh": "#!/bin/sh\n"})
	if err := os.Chmod(filepath.Join(up.dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	c1 := up.commit("links")
	s, fs := newTestSyncer(t, up.dir)
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if r := fs.revisions(); len(r) != 1 || r[0].Status != state.RevisionApplied || len(r[0].Objects) != 4 {
		t.Fatalf("revisions = %+v", summary(fs.snapshot()))
	}
	dir := t.TempDir()
	if err := s.src.Extract(c1, dir); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "base/namespace.yaml")); err != nil || target != "../namespace.txt" {
		t.Fatalf("symlink: %q %v", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "run.sh")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Fatalf("run.sh: %q %v", b, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func firstError(ds []diag.Diagnostic) *diag.Diagnostic {
	for i := range ds {
		if ds[i].Severity == diag.Error {
			return &ds[i]
		}
	}
	return nil
}

func statuses(s *state.State) []state.RevisionStatus {
	var out []state.RevisionStatus
	for _, r := range s.Revisions {
		out = append(out, r.Status)
	}
	return out
}

type revSummary struct {
	Commit  string
	Status  state.RevisionStatus
	Objects int
	Diags   []string
}

func summary(s *state.State) []revSummary {
	var out []revSummary
	for _, r := range s.Revisions {
		rs := revSummary{Commit: short(r.Commit), Status: r.Status, Objects: len(r.Objects)}
		for _, d := range r.Diagnostics {
			rs.Diags = append(rs.Diags, d.String())
		}
		out = append(out, rs)
	}
	return out
}

// A crafted tree that no checkout could hold is rejected, not retried.
func TestCraftedTreeRejected(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("one")
	repo, err := git.PlainOpen(up.dir)
	if err != nil {
		t.Fatal(err)
	}
	blob := repo.Storer.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	w, _ := blob.Writer()
	w.Write([]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: evil\n"))
	w.Close()
	bh, err := repo.Storer.SetEncodedObject(blob)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ names []string }{{[]string{"a.yaml", "a.yaml"}}, {[]string{".git"}}, {[]string{".."}}} {
		tree := &object.Tree{}
		for _, n := range tc.names {
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: n, Mode: filemode.Regular, Hash: bh})
		}
		th := storeObject(t, repo, tree)
		sig := object.Signature{Name: "Mallory", Email: "m@example.com", When: time.Now()}
		parent := plumbing.NewHash(up.head())
		ch := storeObject(t, repo, &object.Commit{Author: sig, Committer: sig, Message: "crafted", TreeHash: th, ParentHashes: []plumbing.Hash{parent}})
		if err := repo.Storer.SetReference(plumbing.NewHashReference("refs/heads/main", ch)); err != nil {
			t.Fatal(err)
		}
		s, fs := newTestSyncer(t, up.dir)
		fs.state.Revisions = []state.Revision{{Commit: c1, Status: state.RevisionApplied}}
		if err := s.sync(ctxT(t)); err != nil {
			t.Fatalf("%v: %v", tc.names, err)
		}
		st := fs.snapshot()
		r := st.Revisions[len(st.Revisions)-1]
		if r.Commit != ch.String() || r.Status != state.RevisionRejected || len(r.Diagnostics) != 1 || st.Current().Commit != c1 {
			t.Fatalf("%v: %+v", tc.names, summary(st))
		}
		t.Logf("%v: %s", tc.names, r.Diagnostics[0])
	}
}

func storeObject(t *testing.T, repo *git.Repository, o interface {
	Encode(plumbing.EncodedObject) error
}) plumbing.Hash {
	t.Helper()
	obj := repo.Storer.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestInitRepo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	fsys := fstest.MapFS{"app.yaml": {Data: []byte("a: 1\n")}, "sub/b.yaml": {Data: []byte("b: 2\n")}}
	commit, err := InitRepo(dir, fsys, "first")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", dir, "log", "--format=%H %s", DefaultBranch).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != commit+" first" {
		t.Fatalf("git log: %s %v", out, err)
	}
	if out, _ := exec.Command("git", "-C", dir, "status", "--porcelain").CombinedOutput(); len(out) != 0 {
		t.Fatalf("work tree not clean: %s", out)
	}
	if _, err := InitRepo(dir, fsys, "again"); err == nil {
		t.Fatal("InitRepo over an existing dir succeeded")
	}
}

// A commit that removes every object is rejected, with the way to opt in,
// unless berth.yaml allows it; the previous revision stays applied.
func TestEmptyCommitRejected(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("hello")
	up.git("rm", "-q", "*.yaml")
	up.write(map[string]string{"README.md": "# moved elsewhere\n"})
	c2 := up.commit("remove everything")
	s, fs := newTestSyncer(t, up.dir)
	fs.state.Revisions = []state.Revision{{Commit: c1, Status: state.RevisionApplied}}
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	st := fs.snapshot()
	r := st.Revisions[len(st.Revisions)-1]
	if r.Commit != c2 || r.Status != state.RevisionRejected || len(r.Diagnostics) != 1 || st.Current().Commit != c1 ||
		r.Diagnostics[0].String() != ".:1:1: error: no objects: applying this would remove every object from the cluster; if that is intended, set allowEmpty: true in berth.yaml" {
		t.Fatalf("%+v", summary(st))
	}
	up.write(map[string]string{"berth.yaml": "allowEmpty: true\n"})
	c3 := up.commit("really")
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if cur := fs.snapshot().Current(); cur.Commit != c3 || len(cur.Objects) != 0 || len(cur.Diagnostics) != 0 {
		t.Fatalf("allowEmpty: %+v", summary(fs.snapshot()))
	}
}

// A master following an overlay's path renders it with its base beside
// the path, as berth validate on the repository does; without a
// kustomization below the path nothing beside it is written.
func TestSubPathKustomizeOverlay(t *testing.T) {
	up := newUpstream(t, "main")
	up.write(map[string]string{
		"base/kustomization.yaml":          "resources: [cm.yaml]\n",
		"base/cm.yaml":                     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
		"overlays/prod/kustomization.yaml": "resources: [../../base]\nnamePrefix: prod-\n",
	})
	c1 := up.commit("overlay")
	s, fs := newTestSyncer(t, up.dir, WithPath("overlays/prod"))
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	r := fs.revisions()
	if len(r) != 1 || r[0].Commit != c1 || r[0].Status != state.RevisionApplied || len(r[0].Objects) != 1 || r[0].Objects[0].ID.Name != "prod-settings" {
		t.Fatalf("revisions = %+v %v", summary(fs.snapshot()), r[0].Diagnostics)
	}
}

// A commit that removes a Namespace and keeps objects in it is refused at
// those objects; removing the Namespace with its objects is applied.
func TestRemovedNamespaceTakesItsObjects(t *testing.T) {
	up := newUpstream(t, "main")
	const ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: shop}\ndata: {k: v}\n"
	const keep = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep}\ndata: {k: v}\n"
	up.write(map[string]string{"ns.yaml": ns, "cm.yaml": cm, "keep.yaml": keep})
	c1 := up.commit("shop")
	s, fs := newTestSyncer(t, up.dir)
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if cur := fs.snapshot().Current(); cur == nil || cur.Commit != c1 {
		t.Fatalf("%+v", summary(fs.snapshot()))
	}
	up.git("rm", "-q", "ns.yaml")
	c2 := up.commit("drop the namespace, keep its ConfigMap")
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	st := fs.snapshot()
	r := st.Revisions[len(st.Revisions)-1]
	if r.Commit != c2 || r.Status != state.RevisionRejected || len(r.Diagnostics) != 2 || st.Current().Commit != c1 || // and the loader's warning
		r.Diagnostics[0].String() != "cm.yaml:1:1: error: this commit removes Namespace shop, which takes every object in it; remove ConfigMap shop/cfg too, or keep the Namespace" {
		t.Fatalf("%+v", summary(st))
	}
	up.git("rm", "-q", "cm.yaml")
	c3 := up.commit("drop the namespace and its ConfigMap")
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if cur := fs.snapshot().Current(); cur.Commit != c3 || len(cur.Objects) != 1 {
		t.Fatalf("%+v", summary(fs.snapshot()))
	}
}
