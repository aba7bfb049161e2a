package api

import (
	"fmt"
	"time"

	"github.com/berth/berth/appliance/state"
)

// The words the CLI and the dashboard both print for revisions' timing
// and for events, kept here so that they say the same thing.

// Span prints a short duration: 850ms, 4.2s, 3m12s.
func Span(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Age is how long ago t was, in kubectl's AGE words: 5s, 3m, 7h, 2d.
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// LastSeen is an event's age as kubectl says it: "5s", or
// "5s (x3 over 2m)" for an event that repeated.
func LastSeen(e *state.Event, now time.Time) string {
	if e.Count > 1 {
		return fmt.Sprintf("%s (x%d over %s)", Age(e.LastTimestamp, now), e.Count, Age(e.FirstTimestamp, now))
	}
	return Age(e.LastTimestamp, now)
}

// SeenToCommitted is a revision's SEEN→COMMITTED column: fetch,
// validation and one Raft round.
func SeenToCommitted(t state.RevisionTiming) string {
	if t.Seen.IsZero() || t.Committed.IsZero() {
		return "<unknown>"
	}
	return Span(t.Committed.Sub(t.Seen))
}

// Converged is a revision's CONVERGED column: seen→converged, or why
// there is none.
func Converged(t state.RevisionTiming, status state.RevisionStatus) string {
	if status == state.RevisionRejected {
		return "-"
	}
	if secs, ok := t.Convergence(); ok {
		return Span(time.Duration(secs * float64(time.Second)))
	}
	switch t.Outcome {
	case state.OutcomeConverged:
		return "yes" // but when it was seen is not known
	case state.OutcomeSuperseded:
		return "superseded"
	case state.OutcomeDeadlineExceeded:
		return "never (deadline)"
	}
	return "in progress"
}

// Outcome says how a revision's rollout went in a phrase that stands on
// its own (berth status's "outcome:"): "converged in 4.2s", "superseded
// (c4dddddddd)", "never (deadline) (deployment apps/web)", "in progress".
func Outcome(t state.RevisionTiming, status state.RevisionStatus) string {
	what := Converged(t, status)
	if _, ok := t.Convergence(); ok {
		return "converged in " + what
	}
	if t.Outcome == state.OutcomeConverged {
		return "converged" // but when it was seen is not known
	}
	if t.Outcome != "" && t.Detail != "" {
		what += " (" + t.Detail + ")"
	}
	return what
}
