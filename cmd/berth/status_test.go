package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

// A rejected head is not "synced": status says the head does not run,
// which rollouts are stuck where, and how long the last revision took.
func TestStatusRejectedHeadAndRollouts(t *testing.T) {
	t0 := time.Now()
	var out bytes.Buffer
	printStatus(&out, api.Status{Commit: "aaaaaaaaaaaa", Sync: api.SyncStatus{State: "synced", Repo: "git@x:y", Branch: "main"},
		RejectedHead: &api.RevisionSummary{Commit: "bbbbbbbbbbbb", Status: state.RevisionRejected, Message: "oops\nbody", Author: "Ada"},
		Rollouts:     []reconcile.RolloutView{{Kind: "Deployment", Namespace: "shop", Name: "web", Desired: 4, Ready: 2, Updated: 4, Reason: "ProgressDeadlineExceeded"}},
		LastSettled: &api.RevisionSummary{Commit: "aaaaaaaaaaaa", Status: state.RevisionApplied,
			RevisionTiming: state.RevisionTiming{Seen: t0, Outcome: state.OutcomeConverged, Settled: t0.Add(4200 * time.Millisecond)}}})
	got := out.String()
	for _, want := range []string{
		"sync:       head rejected: bbbbbbbbbb failed validation, aaaaaaaaaa still runs (git@x:y, branch main)\n",
		`rejected:   bbbbbbbbbb "oops" by Ada`,
		"rollout:    deployment shop/web: 2/4 ready, 4/4 updated, ProgressDeadlineExceeded\n",
		"outcome:    aaaaaaaaaa converged in 4.2s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "synced") {
		t.Errorf("says synced:\n%s", got)
	}
}
