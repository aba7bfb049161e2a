package api

import (
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
)

// TestRevisionTimingWords: the CLI's columns and berth status's outcome,
// which the dashboard shows too, for each outcome.
func TestRevisionTimingWords(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name                         string
		timing                       state.RevisionTiming
		status                       state.RevisionStatus
		committed, converged, phrase string
	}{
		{"converged", state.RevisionTiming{Seen: t0, Committed: t0.Add(850 * time.Millisecond), Outcome: state.OutcomeConverged, Settled: t0.Add(4200 * time.Millisecond)},
			state.RevisionApplied, "850ms", "4.2s", "converged in 4.2s"},
		{"converged, seen unknown", state.RevisionTiming{Outcome: state.OutcomeConverged, Settled: t0},
			state.RevisionApplied, "<unknown>", "yes", "converged"},
		{"in progress", state.RevisionTiming{Seen: t0, Committed: t0.Add(2 * time.Second)},
			state.RevisionApplied, "2s", "in progress", "in progress"},
		{"superseded", state.RevisionTiming{Seen: t0, Committed: t0.Add(time.Second), Outcome: state.OutcomeSuperseded, Settled: t0.Add(time.Minute), Detail: "c4dddddddd"},
			state.RevisionSuperseded, "1s", "superseded", "superseded (c4dddddddd)"},
		{"deadline", state.RevisionTiming{Seen: t0, Committed: t0.Add(time.Second), Outcome: state.OutcomeDeadlineExceeded, Settled: t0.Add(10 * time.Minute), Detail: "deployment shop/web"},
			state.RevisionApplied, "1s", "never (deadline)", "never (deadline) (deployment shop/web)"},
		{"rejected", state.RevisionTiming{Seen: t0}, state.RevisionRejected, "<unknown>", "-", "-"},
		{"slow", state.RevisionTiming{Seen: t0, Committed: t0.Add(3*time.Minute + 12400*time.Millisecond), Outcome: state.OutcomeConverged, Settled: t0.Add(3*time.Minute + 12400*time.Millisecond)},
			state.RevisionApplied, "3m12s", "3m12s", "converged in 3m12s"},
	} {
		if got := SeenToCommitted(tc.timing); got != tc.committed {
			t.Errorf("%s: SeenToCommitted %q, want %q", tc.name, got, tc.committed)
		}
		if got := Converged(tc.timing, tc.status); got != tc.converged {
			t.Errorf("%s: Converged %q, want %q", tc.name, got, tc.converged)
		}
		if got := Outcome(tc.timing, tc.status); got != tc.phrase {
			t.Errorf("%s: Outcome %q, want %q", tc.name, got, tc.phrase)
		}
	}
}

// TestEventAge: kubectl's ages, and "x3 over 2m" for a repeated event.
func TestEventAge(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	e := state.Event{Count: 1, FirstTimestamp: now.Add(-20 * time.Second), LastTimestamp: now.Add(-20 * time.Second)}
	if got := LastSeen(&e, now); got != "20s" {
		t.Errorf("once: %q", got)
	}
	e.Count, e.FirstTimestamp = 3, now.Add(-150*time.Second)
	if got := LastSeen(&e, now); got != "20s (x3 over 2m)" {
		t.Errorf("repeated: %q", got)
	}
	for d, want := range map[time.Duration]string{5 * time.Hour: "5h", 72 * time.Hour: "3d"} {
		if got := Age(now.Add(-d), now); got != want {
			t.Errorf("Age %v: %q, want %q", d, got, want)
		}
	}
	if got := Age(time.Time{}, now); got != "<unknown>" {
		t.Errorf("zero time: %q", got)
	}
}
