package state

import (
	"fmt"
	"slices"
	"time"
)

// RevisionOutcome is how an applied revision's rollout ended.
type RevisionOutcome string

const (
	// OutcomeConverged: every replica the revision changed was Ready.
	OutcomeConverged RevisionOutcome = "Converged"
	// OutcomeSuperseded: a newer revision was applied first.
	OutcomeSuperseded RevisionOutcome = "Superseded"
	// OutcomeDeadlineExceeded: a rollout of the revision hit its progress
	// deadline; the revision never converged.
	OutcomeDeadlineExceeded RevisionOutcome = "ProgressDeadlineExceeded"
)

// RevisionTiming is when a revision went through each step. Every time
// is a proposing master's clock, carried in the command: the FSM may not
// read its own.
type RevisionTiming struct {
	// Seen is when the syncer found the commit at the branch head.
	Seen time.Time `json:"seen,omitzero"`
	// Committed is when the revision was committed to the Raft log.
	Committed time.Time `json:"committed,omitzero"`
	// Outcome is set once, at Settled; empty while the rollout runs (and
	// for a rejected revision, which has none).
	Outcome RevisionOutcome `json:"outcome,omitempty"`
	Settled time.Time       `json:"settled,omitzero"`
	// Detail names what the outcome is about (the stalled workload).
	Detail string `json:"detail,omitempty"`
}

// Convergence is how long seen→converged took, in seconds, if it did.
func (t RevisionTiming) Convergence() (float64, bool) {
	if t.Outcome != OutcomeConverged || t.Seen.IsZero() {
		return 0, false
	}
	return max(t.Settled.Sub(t.Seen).Seconds(), 0), true
}

// CmdMarkRevision records a step of a revision: Committed, or an Outcome
// (with Settled). Each is recorded once; a repeat (a retried proposal,
// two leaders' controllers) keeps the first, so a revision's convergence
// is counted exactly once.
const CmdMarkRevision CommandType = "MarkRevision" // RevisionMark

// RevisionMark is CmdMarkRevision's payload.
type RevisionMark struct {
	Commit    string          `json:"commit"`
	Committed time.Time       `json:"committed,omitzero"`
	Outcome   RevisionOutcome `json:"outcome,omitempty"`
	Settled   time.Time       `json:"settled,omitzero"`
	Detail    string          `json:"detail,omitempty"`
}

// ConvergenceBuckets are the upper bounds, in seconds, of the convergence
// histogram: a rollout takes seconds to minutes.
var ConvergenceBuckets = []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600}

// ConvergenceStats is the cumulative histogram of every converged
// revision's seen→converged time (berth_revision_convergence_seconds).
// It is kept in the state, not in a master's memory, so that each
// revision is counted once whichever master led, and the count survives
// restarts and outlives the revisions' bounded history.
type ConvergenceStats struct {
	// Bounds are the buckets' upper bounds, Counts the observations at
	// or under each (cumulative, as Prometheus has them).
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
	// Outcomes counts the revisions that ended, by outcome.
	Outcomes map[RevisionOutcome]uint64 `json:"outcomes,omitempty"`
}

// observe returns a copy of c with one outcome counted (and, converged,
// its time); the state before keeps c.
func (c *ConvergenceStats) observe(outcome RevisionOutcome, seconds float64, converged bool) *ConvergenceStats {
	var n ConvergenceStats
	if c != nil {
		n = *c
	}
	if n.Bounds == nil || len(n.Counts) != len(n.Bounds) { // none yet, or a mangled snapshot's
		n.Bounds, n.Counts = slices.Clone(ConvergenceBuckets), make([]uint64, len(ConvergenceBuckets))
	}
	n.Outcomes = map[RevisionOutcome]uint64{}
	if c != nil {
		for k, v := range c.Outcomes {
			n.Outcomes[k] = v
		}
	}
	n.Outcomes[outcome]++
	if !converged {
		return &n
	}
	n.Counts = slices.Clone(n.Counts)
	for i, b := range n.Bounds {
		if seconds <= b {
			n.Counts[i]++
		}
	}
	n.Count++
	n.Sum += seconds
	return &n
}

// markRevision applies a RevisionMark to the newest revision of its
// commit (a commit pushed again is a new revision).
func markRevision(w *writer, m RevisionMark) error {
	i := len(w.s.Revisions) - 1
	for i >= 0 && w.s.Revisions[i].Commit != m.Commit {
		i--
	}
	if i < 0 {
		return fmt.Errorf("no revision of commit %q", m.Commit)
	}
	r := w.s.Revisions[i]
	if !m.Committed.IsZero() && r.Committed.IsZero() {
		w.Revisions()[i].Committed = m.Committed
	}
	if m.Outcome == "" {
		return nil
	}
	switch {
	case r.Status == RevisionRejected:
		return fmt.Errorf("revision %s is rejected: it has no rollout to end", m.Commit)
	case m.Outcome != OutcomeConverged && m.Outcome != OutcomeDeadlineExceeded:
		return fmt.Errorf("unknown outcome %q", m.Outcome)
	case r.Outcome != "":
		return nil // settled already: the first mark stands
	}
	settle(w, i, m.Outcome, m.Settled, m.Detail)
	return nil
}

// settle records revision i's outcome and counts it.
func settle(w *writer, i int, outcome RevisionOutcome, at time.Time, detail string) {
	r := &w.Revisions()[i]
	r.Outcome, r.Settled, r.Detail = outcome, at, detail
	secs, ok := r.Convergence()
	w.s.Convergence = w.s.Convergence.observe(outcome, secs, ok)
}

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}
