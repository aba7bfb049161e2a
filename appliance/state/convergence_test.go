package state_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

func addRevision(commit string, status state.RevisionStatus, seen time.Time) state.Command {
	return state.NewCommand(state.CmdAddRevision, state.Revision{Commit: commit, Status: status, RevisionTiming: state.RevisionTiming{Seen: seen}})
}

func mark(m state.RevisionMark) state.Command { return state.NewCommand(state.CmdMarkRevision, m) }

// A revision's steps are recorded once each: a second Committed or
// outcome mark keeps the first, so the histogram counts it once; a newer
// applied revision settles an unsettled one as Superseded, and a rejected
// one does not.
func TestMarkRevision(t *testing.T) {
	t.Parallel()
	t0 := statetest.T0
	s := &state.State{}
	statetest.MustApply(t, s, addRevision("c1", state.RevisionApplied, t0))
	statetest.MustApply(t, s, mark(state.RevisionMark{Commit: "c1", Committed: t0.Add(time.Second)}))
	statetest.MustApply(t, s, mark(state.RevisionMark{Commit: "c1", Committed: t0.Add(5 * time.Second)}))
	statetest.MustApply(t, s, mark(state.RevisionMark{Commit: "c1", Outcome: state.OutcomeConverged, Settled: t0.Add(12 * time.Second)}))
	statetest.MustApply(t, s, mark(state.RevisionMark{Commit: "c1", Outcome: state.OutcomeDeadlineExceeded, Settled: t0.Add(time.Hour)}))
	r := s.Revisions[0]
	if !r.Committed.Equal(t0.Add(time.Second)) || r.Outcome != state.OutcomeConverged || !r.Settled.Equal(t0.Add(12*time.Second)) {
		t.Fatalf("revision c1: %+v", r.RevisionTiming)
	}
	if secs, ok := r.Convergence(); !ok || secs != 12 {
		t.Errorf("convergence = %v, %v; want 12 s", secs, ok)
	}
	c := s.Convergence
	if c.Count != 1 || c.Sum != 12 || c.Outcomes[state.OutcomeConverged] != 1 {
		t.Fatalf("stats: %+v", c)
	}
	// 12 s is in the buckets from 20 s up.
	for i, b := range c.Bounds {
		if want := uint64(0); b >= 20 && c.Counts[i] != 1 || b < 20 && c.Counts[i] != want {
			t.Errorf("bucket %v: %d", b, c.Counts[i])
		}
	}

	statetest.MustApply(t, s, addRevision("c2", state.RevisionApplied, t0.Add(time.Minute)))
	statetest.MustApply(t, s, addRevision("c3", state.RevisionRejected, t0.Add(2*time.Minute)))
	statetest.MustReject(t, s, "rejected", mark(state.RevisionMark{Commit: "c3", Outcome: state.OutcomeConverged}))
	statetest.MustReject(t, s, "no revision", mark(state.RevisionMark{Commit: "nope", Committed: t0}))
	statetest.MustReject(t, s, "unknown outcome", mark(state.RevisionMark{Commit: "c2", Outcome: state.OutcomeSuperseded}))
	before := s.Convergence
	statetest.MustApply(t, s, addRevision("c4", state.RevisionApplied, t0.Add(3*time.Minute)))
	if r := s.Revisions[1]; r.Outcome != state.OutcomeSuperseded || !r.Settled.Equal(t0.Add(3*time.Minute)) || r.Detail != "c4" {
		t.Errorf("c2 after c4: %+v", r.RevisionTiming)
	}
	if s.Revisions[0].Outcome != state.OutcomeConverged {
		t.Errorf("c1's outcome changed to %s", s.Revisions[0].Outcome)
	}
	if c := s.Convergence; c.Count != 1 || c.Outcomes[state.OutcomeSuperseded] != 1 {
		t.Errorf("stats after supersession: %+v", c)
	}
	if before.Outcomes[state.OutcomeSuperseded] != 0 {
		t.Errorf("Apply changed the stats of the state before the batch")
	}
	// Outcomes in an added revision are not the proposer's to set.
	statetest.MustApply(t, s, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c5", Status: state.RevisionApplied,
		RevisionTiming: state.RevisionTiming{Outcome: state.OutcomeConverged, Settled: t0}}))
	if r := s.Revisions[len(s.Revisions)-1]; r.Outcome != "" || s.Convergence.Count != 1 {
		t.Errorf("c5 came settled: %+v", r.RevisionTiming)
	}
}

// The stats go through a snapshot unchanged.
func TestConvergenceSnapshot(t *testing.T) {
	t.Parallel()
	s := &state.State{}
	statetest.MustApply(t, s, addRevision("c1", state.RevisionApplied, statetest.T0),
		mark(state.RevisionMark{Commit: "c1", Outcome: state.OutcomeConverged, Settled: statetest.T0.Add(3 * time.Second)}))
	var buf bytes.Buffer
	if err := state.WriteSnapshot(&buf, s); err != nil {
		t.Fatal(err)
	}
	got, err := state.ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !statetest.Same(s, got) || !slices.Equal(got.Convergence.Counts, s.Convergence.Counts) {
		t.Errorf("snapshot lost the stats: %+v", got.Convergence)
	}
}
