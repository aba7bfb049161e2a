package reconcile

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
	"github.com/berth/berth/schemas/objects"
)

// TestUndecodableRevisionStillRunsNodeController: a revision that cannot
// be decoded stops the controllers that read it, not the node controller
// (which does not), and a Loop without a Logger does not panic.
func TestUndecodableRevisionStillRunsNodeController(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := statetest.NewStore()
	n := node("n1")
	n.Ready = true
	bad := state.Revision{Commit: "bad", Status: state.RevisionApplied, Objects: []state.Object{{
		ID:   objects.ObjectID{Kind: "Deployment", Namespace: "default", Name: "web"},
		JSON: []byte(`{"spec":{"replicas":"three"}}`),
	}}}
	if _, err := m.Propose(context.Background(), []state.Command{
		state.NewCommand(state.CmdRegisterNode, n),
		state.NewCommand(state.CmdAddRevision, bad),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := DesiredState(m.State()); err == nil {
		t.Fatal("the revision decodes; the test needs one that does not")
	}
	l := &Loop{Store: m, Heartbeats: &Heartbeats{}, ServiceCIDR: DefaultServiceCIDR, Timeouts: DefaultNodeTimeouts}
	// No heartbeat since t0 and now far past the grace period.
	l.pass(context.Background(), t0, func() time.Time { return t0.Add(time.Hour) })
	if m.State().Nodes["n1"].Ready {
		t.Fatalf("node n1 is still Ready: the node controller did not run (proposed %d batches)", len(m.Proposed())-1)
	}
}

// TestRefusedBatchIsNeverWritten: a controller whose batch the FSM would
// refuse proposes nothing, however often it runs, and the refusal is
// logged once; the loop goes on proposing batches that apply.
func TestRefusedBatchIsNeverWritten(t *testing.T) {
	m := statetest.NewStore()
	var logs bytes.Buffer
	l := &Loop{Store: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	bad := controller{"bad", false, func(*state.State, *Desired) []state.Command {
		return []state.Command{state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/ghost", NodeName: "n1"})}
	}}
	for range 3 {
		l.control(context.Background(), bad, time.Now)
	}
	if len(m.Proposed()) != 0 {
		t.Fatalf("a batch that cannot apply was proposed %d times", len(m.Proposed()))
	}
	if n := strings.Count(logs.String(), "controller command refused"); n != 1 {
		t.Fatalf("the refusal was logged %d times, want once:\n%s", n, logs.String())
	}
	good := controller{"good", false, func(*state.State, *Desired) []state.Command {
		return []state.Command{state.NewCommand(state.CmdRegisterNode, node("n1"))}
	}}
	l.control(context.Background(), good, time.Now)
	if len(m.Proposed()) != 1 || m.State().Nodes["n1"] == nil {
		t.Fatalf("a batch that applies was not proposed: %d proposals", len(m.Proposed()))
	}
}
