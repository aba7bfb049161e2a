package gitops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth/berth/appliance/retry"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas"
	"github.com/berth/berth/schemas/diag"
)

// Proposer commits a batch of commands to the replicated log and returns its
// index, and reads the state, whose newest revision says which commit was
// recorded last. The master passes its store.
type Proposer interface {
	Propose(ctx context.Context, batch []state.Command) (uint64, error)
	State() *state.State
}

// SyncState is where the syncer stands, for the API.
type SyncState string

const (
	// SyncStopped: Run is not running (this master is not the leader, or
	// has not started syncing yet).
	SyncStopped SyncState = "stopped"
	// Syncing: a fetch, load or proposal is in progress.
	Syncing SyncState = "syncing"
	// Synced: the last sync succeeded and the branch head is recorded. A
	// rejected head is synced too: it was recorded, see CommitStatus.
	Synced SyncState = "synced"
	// SyncError: the last sync failed (see LastError); the previous
	// revision stays in force and the next poll tries again.
	SyncError SyncState = "error"
)

// Status is what the API shows about the Git source.
type Status struct {
	URL    string    `json:"url"`
	Branch string    `json:"branch,omitempty"`
	Path   string    `json:"path,omitempty"`
	State  SyncState `json:"state"`
	// Commit is the newest commit recorded as a revision (or the one Run
	// was started with).
	Commit string `json:"commit,omitempty"`
	// CommitStatus is the status Commit was recorded with by this syncer;
	// empty when it was recorded before Run started.
	CommitStatus state.RevisionStatus `json:"commitStatus,omitempty"`
	// LastSync is when a sync last succeeded, whether or not it found a
	// new commit.
	LastSync      time.Time `json:"lastSync,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	LastErrorTime time.Time `json:"lastErrorTime,omitzero"`
}

// Defaults of a Syncer.
const (
	DefaultInterval = 15 * time.Second
	// DefaultDebounce only has to gather the webhooks one push fires at
	// once (one per ref, within milliseconds); triggers during a sync are
	// merged anyway. Every millisecond of it is commit-to-running latency.
	DefaultDebounce = 50 * time.Millisecond
	// DefaultTriggerGap is the least time from the end of one triggered
	// sync to the start of the next: however many webhooks arrive, and
	// whoever sends them, they cost at most one fetch per gap (one runs, one
	// waits, the rest merge into the waiting one). Polls do not count, so a
	// lone push right after a poll is not delayed.
	DefaultTriggerGap = time.Second
)

// SyncTimeout bounds one fetch-load-propose cycle, so a remote that accepts
// the connection and then hangs cannot stall syncing forever.
const SyncTimeout = 2 * time.Minute

// maxDiagnostics bounds what one rejected revision carries into the Raft
// log; a broken repo can produce thousands, and the first ones say enough.
const maxDiagnostics = 200

// SyncerOption configures a Syncer.
type SyncerOption func(*Syncer)

// WithInterval sets how often the remote is polled.
func WithInterval(d time.Duration) SyncerOption {
	return func(s *Syncer) {
		if d > 0 {
			s.interval = d
		}
	}
}

// WithDebounce sets how long Trigger waits for more triggers before
// syncing: a push often fires several webhooks (one per ref) at once.
func WithDebounce(d time.Duration) SyncerOption {
	return func(s *Syncer) {
		if d >= 0 {
			s.debounce = d
		}
	}
}

// WithTriggerGap sets the least time between the end of a triggered sync
// and the start of the next.
func WithTriggerGap(d time.Duration) SyncerOption {
	return func(s *Syncer) {
		if d >= 0 {
			s.gap = d
		}
	}
}

// WithHistoryLimit sets how many revisions the state keeps once a new one
// is recorded (0: state.DefaultRevisionHistory).
func WithHistoryLimit(n int) SyncerOption {
	return func(s *Syncer) { s.history = n }
}

// WithScratchDir sets where commits are extracted for loading (default:
// the OS temp dir). Each sync uses a fresh directory and removes it.
func WithScratchDir(dir string) SyncerOption {
	return func(s *Syncer) { s.scratch = dir }
}

// Syncer turns new heads of the tracked branch into revisions.
//
// Leadership: the caller runs Run only while this master is the Raft
// leader, started with the newest revision's commit read from the store
// after the leader's barrier, and cancels its context on losing
// leadership. The syncer does not poll IsLeader itself because the commit
// it compares against must come from the replicated state at every
// leadership gain: a syncer that kept running on a follower would hold a
// stale commit and re-propose heads the previous leader already recorded.
//
// Several commits at once: only the branch head is recorded, as Argo CD
// and Flux do. The head is the desired state; intermediate commits never
// ran, so recording them as applied-then-superseded would claim rollouts
// that never happened, and loading each one would delay the head by a
// full validation per commit. A bad intermediate commit that the head
// fixes is therefore never shown as rejected; `berth validate` in CI is
// where per-commit feedback belongs.
type Syncer struct {
	src      *Source
	prop     Proposer
	log      *slog.Logger
	interval time.Duration
	debounce time.Duration
	gap      time.Duration
	scratch  string
	history  int

	trigger chan struct{}
	running atomic.Bool
	syncs   atomic.Int64 // completed sync attempts, for tests

	mu     sync.Mutex
	status Status
	// started and finished count syncs, and done is closed (and replaced)
	// as each ends: what SyncNow waits on.
	started, finished int64
	done              chan struct{}
}

// NewSyncer returns a syncer of src that proposes revisions to p.
func NewSyncer(src *Source, p Proposer, opts ...SyncerOption) *Syncer {
	s := &Syncer{
		src:      src,
		prop:     p,
		log:      src.log.With("component", "gitops"),
		interval: DefaultInterval,
		debounce: DefaultDebounce,
		gap:      DefaultTriggerGap,
		trigger:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		status:   Status{State: SyncStopped},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Trigger asks for a sync soon (a webhook arrived): after the debounce, and
// no sooner than the trigger gap after the last triggered sync. It never blocks; any
// number of triggers while one is pending or a sync runs become one sync.
// Without Run running it does nothing.
func (s *Syncer) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Status returns the syncer's current status.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.URL, st.Branch, st.Path = s.src.URL(), s.src.Branch(), s.src.Path()
	return st
}

// Run syncs at once, then on every interval and trigger, until ctx ends
// (it then returns nil). A head equal to the store's newest revision is
// not recorded again; that is read from the store on every sync, not
// remembered, so a restored snapshot that lacks the head gets it back at
// the next sync. Run may be called again after it returns, but not
// concurrently.
func (s *Syncer) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("gitops: syncer is already running")
	}
	defer s.running.Store(false)
	lastCommit := LastCommit(s.prop.State())
	s.mu.Lock()
	s.status.Commit, s.status.CommitStatus = lastCommit, ""
	s.mu.Unlock()
	defer s.setState(SyncStopped)
	// A trigger that arrived while stopped is stale: the first sync below
	// covers it.
	select {
	case <-s.trigger:
	default:
	}
	s.log.Info("gitops sync started", "interval", s.interval, "commit", lastCommit)
	t := time.NewTimer(0)
	defer t.Stop()
	var lastTriggered time.Time // end of the last triggered sync
	for {
		triggered := false
		select {
		case <-ctx.Done():
			s.log.Info("gitops sync stopped")
			return nil
		case <-t.C:
		case <-s.trigger:
			if !retry.Sleep(ctx, max(s.debounce, s.gap-time.Since(lastTriggered))) {
				continue
			}
			// Triggers that came during the wait are this sync's too.
			select {
			case <-s.trigger:
			default:
			}
			triggered = true
		}
		_ = s.sync(ctx) // recorded in Status and the log
		if triggered {
			lastTriggered = time.Now()
		}
		t.Reset(s.interval)
	}
}

func (s *Syncer) setState(st SyncState) {
	s.mu.Lock()
	s.status.State = st
	s.mu.Unlock()
}

// sync fetches the branch and records its head if it is new.
func (s *Syncer) sync(ctx context.Context) error {
	defer s.syncs.Add(1)
	ctx, cancel := context.WithTimeout(ctx, SyncTimeout)
	defer cancel()
	s.mu.Lock()
	s.status.State = Syncing
	s.started++
	s.mu.Unlock()
	rev, err := s.next(ctx)
	if err == nil && rev != nil {
		_, err = s.prop.Propose(ctx, []state.Command{state.NewCommand(state.CmdAddRevision, rev), state.RecordEvents(revisionEvent(rev, time.Now()))})
		if err != nil {
			// Not recorded (or not known to be): the next poll retries.
			// A proposal that timed out yet committed is recorded twice;
			// the duplicate is harmless (same commit, same objects).
			err = fmt.Errorf("propose revision %s: %w", short(rev.Commit), err)
		} else if _, merr := s.prop.Propose(ctx, []state.Command{state.NewCommand(state.CmdMarkRevision,
			state.RevisionMark{Commit: rev.Commit, Committed: time.Now()})}); merr != nil {
			// Only the record of when is lost; the revision runs.
			s.log.Warn("gitops could not record when the revision committed", "commit", short(rev.Commit), "err", merr)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.ended() // under mu, once the status says how it ended
	now := time.Now()
	if err != nil {
		s.status.State, s.status.LastError, s.status.LastErrorTime = SyncError, strings.TrimSpace(err.Error()), now
		s.log.Warn("gitops sync failed", "err", err)
		return err
	}
	s.status.State, s.status.LastSync, s.status.LastError = Synced, now, ""
	if rev != nil {
		s.status.Commit, s.status.CommitStatus = rev.Commit, rev.Status
		attrs := []any{"commit", short(rev.Commit), "status", rev.Status, "objects", len(rev.Objects), "author", rev.Author}
		if rev.Status == state.RevisionRejected {
			attrs = append(attrs, "errors", countErrors(rev.Diagnostics))
			if len(rev.Diagnostics) > 0 {
				attrs = append(attrs, "first", rev.Diagnostics[0].String())
			}
		}
		s.log.Info("gitops recorded revision", attrs...)
	}
	return nil
}

// next fetches and returns the revision of a new head, or nil if the head
// is the last recorded commit.
func (s *Syncer) next(ctx context.Context) (*state.Revision, error) {
	head, err := s.src.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	last := LastCommit(s.prop.State())
	// Any other head is new, including an older commit after a force-push
	// back in history: the branch says that commit is what should run.
	if head == last {
		return nil, nil
	}
	seen := time.Now()
	rev, err := s.Revision(head)
	if rev != nil {
		rev.Seen = seen // validation is part of the way to Raft
	}
	return rev, err
}

// Revision loads commit sha of the clone and builds its revision: applied
// when the loader found no errors, rejected with its diagnostics
// otherwise. An error means the commit could not be read at all (not a
// verdict on its content) and nothing should be recorded.
func (s *Syncer) Revision(sha string) (*state.Revision, error) {
	c, err := s.src.CommitInfo(sha)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.scratch, "berth-commit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rev := &state.Revision{
		Commit:  c.SHA,
		Author:  c.Author,
		Message: c.Message,
		Time:    c.Time,
		Status:  state.RevisionApplied,

		HistoryLimit: s.history,
	}
	if err := s.src.Extract(sha, dir); err != nil {
		var te *TreeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("commit %s: %w", short(sha), err)
		}
		rev.Status = state.RevisionRejected
		rev.Diagnostics = []diag.Diagnostic{{Severity: diag.Error, Position: diag.Position{File: te.Path, Line: 1, Column: 1},
			Rule: diag.RuleFile, Message: te.Msg}}
		return rev, nil
	}
	// Loading the sub-path from the checkout's root keeps positions
	// relative to the repository root.
	arg := "."
	if p := s.src.Path(); p != "" {
		arg = p
	}
	res := schemas.Load([]string{arg}, schemas.WithBase(dir))
	rev.Diagnostics = capDiagnostics(res.Diagnostics)
	if res.Errors() > 0 {
		// Objects of a rejected commit never run; keep them out of the log.
		rev.Status = state.RevisionRejected
		return rev, nil
	}
	if orphans := orphaned(s.prop.State().Current(), res.Objects); len(orphans) > 0 {
		rev.Status, rev.Diagnostics = state.RevisionRejected, capDiagnostics(append(orphans, rev.Diagnostics...))
		return rev, nil
	}
	for _, l := range res.Objects {
		sum := sha256.Sum256(l.JSON)
		rev.Objects = append(rev.Objects, state.Object{ID: l.ID(), Digest: hex.EncodeToString(sum[:]), JSON: l.JSON})
	}
	return rev, nil
}

// orphaned refuses the objects of a namespace whose Namespace object the
// commit removes: removing a Namespace takes its objects with it (see
// appliance/state/namespaces.go), so a commit that keeps some is unclear
// about what it wants, and applying it would stop what it still lists.
// The whole namespace goes when the Namespace and its objects go
// together; as with an empty commit, nothing leaves by accident.
func orphaned(applied *state.Revision, objs []schemas.Loaded) []diag.Diagnostic {
	if applied == nil {
		return nil
	}
	declared := map[string]bool{}
	for _, l := range objs {
		if id := l.ID(); id.Kind == "Namespace" {
			declared[id.Name] = true
		}
	}
	removed := map[string]bool{}
	for _, o := range applied.Objects {
		if o.ID.Kind == "Namespace" && !declared[o.ID.Name] && !state.PermanentNamespace(o.ID.Name) {
			removed[o.ID.Name] = true
		}
	}
	var out []diag.Diagnostic
	for _, l := range objs {
		if id := l.ID(); removed[id.Namespace] {
			out = append(out, diag.Diagnostic{Severity: diag.Error, Position: l.Pos, Rule: diag.RuleReference, Object: id.String(),
				Message: fmt.Sprintf("this commit removes Namespace %s, which takes every object in it; remove %s too, or keep the Namespace", id.Namespace, id)})
		}
	}
	return out
}

func capDiagnostics(ds []diag.Diagnostic) []diag.Diagnostic {
	if len(ds) <= maxDiagnostics {
		return ds
	}
	out := append([]diag.Diagnostic(nil), ds[:maxDiagnostics-1]...)
	rest := ds[maxDiagnostics-1:]
	sev := diag.Warning
	if countErrors(rest) > 0 {
		sev = diag.Error
	}
	return append(out, diag.Diagnostic{
		Severity: sev,
		Position: rest[0].Position,
		Rule:     diag.RuleFile,
		Message:  fmt.Sprintf("%d more problems (%d errors) not shown; run berth validate on this commit for all of them", len(rest), countErrors(rest)),
	})
}

func countErrors(ds []diag.Diagnostic) int {
	n := 0
	for _, d := range ds {
		if d.Severity == diag.Error {
			n++
		}
	}
	return n
}

// LastCommit is the commit Run should start from: the newest revision's,
// whatever its status, or "" before the first.
func LastCommit(st *state.State) string {
	if st == nil || len(st.Revisions) == 0 {
		return ""
	}
	return st.Revisions[len(st.Revisions)-1].Commit
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
