package apiserver

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

// TestEvents: read-only tokens list events, filtered by namespace and
// object, and a blocking query wakes for a new one; bad filters and
// oversized or malformed reports are refused with the rule they break.
func TestEvents(t *testing.T) {
	admin, b := newTestAPI(t)
	ctx := context.Background()
	ro := api.NewClient(admin.Server(), readOnly)
	ev := func(kind, ns, name, reason string) state.Event {
		return state.NewEvent(state.EventNormal, reason, state.ObjectRef{Kind: kind, Namespace: ns, Name: name},
			state.EventSource{Component: "scheduler"}, statetest.T0, "%s %s", reason, name)
	}
	if _, err := b.Propose(ctx, []state.Command{state.RecordEvents(ev("Pod", "a", "p1", "Scheduled"), ev("Pod", "b", "p1", "Scheduled"),
		ev("Deployment", "a", "web", "ScalingReplicaSet"), ev("Node", "", "n1", "NodeNotReady"))}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    api.EventFilter
		want int
	}{{api.EventFilter{}, 4}, {api.EventFilter{Namespace: "a"}, 2}, {api.EventFilter{Namespace: "a", Kind: "Pod", Name: "p1"}, 1}, {api.EventFilter{Name: "p1"}, 2}} {
		evs, _, err := ro.Events(ctx, c.f, nil)
		if err != nil || len(evs) != c.want {
			t.Errorf("events %+v: %d %v, want %d", c.f, len(evs), err, c.want)
		}
	}
	for _, bad := range []api.EventFilter{{Namespace: "A_B"}, {Kind: "pod/../x"}, {Name: strings.Repeat("x", 300)}} {
		if _, _, err := ro.Events(ctx, bad, nil); code(err) != http.StatusBadRequest {
			t.Errorf("events %+v: %v, want 400", bad, err)
		}
	}

	_, index, err := ro.Events(ctx, api.EventFilter{Namespace: "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan []state.Event)
	go func() {
		evs, _, _ := ro.Events(ctx, api.EventFilter{Namespace: "a"}, &api.Watch{Index: index, Wait: 10 * time.Second})
		woke <- evs
	}()
	if _, err := b.Propose(ctx, []state.Command{state.RecordEvents(ev("Pod", "a", "p2", "Scheduled"))}); err != nil {
		t.Fatal(err)
	}
	if evs := <-woke; len(evs) != 3 {
		t.Errorf("watch woke with %d events, want 3", len(evs))
	}

	if _, err := admin.RegisterNode(ctx, state.Node{Name: "n1"}); err != nil {
		t.Fatal(err)
	}
	badType := ev("Node", "", "n1", "X")
	badType.Type = "Fatal"
	if _, err := admin.RecordEvents(ctx, "n1", []state.Event{badType}); code(err) != http.StatusBadRequest {
		t.Errorf("event of type Fatal: %v, want 400", err)
	}
	if _, err := admin.RecordEvents(ctx, "n1", []state.Event{ev("Deployment", "a", "web", "X")}); code(err) != http.StatusBadRequest {
		t.Errorf("agent event about a Deployment: %v, want 400", err)
	}
	// A node reporting more often than its agent would is held back.
	throttled := 0
	for range eventReportBurst + 1 {
		if _, err := admin.RecordEvents(ctx, "n1", []state.Event{ev("Node", "", "n1", "X")}); code(err) == http.StatusTooManyRequests {
			throttled++
		}
	}
	if throttled == 0 {
		t.Errorf("%d reports at once were all taken, want a 429 beyond %d", eventReportBurst+1, eventReportBurst)
	}
	if _, err := admin.RecordEvents(ctx, "n9", []state.Event{ev("Node", "", "n9", "X")}); code(err) != http.StatusNotFound {
		t.Errorf("events of a node not registered: %v, want 404", err)
	}
	many := make([]state.Event, state.MaxEventBatch+1)
	for i := range many {
		many[i] = ev("Node", "", "n1", "X")
	}
	if _, err := admin.RecordEvents(ctx, "n1", many); code(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("%d events in one report: %v, want 413", len(many), err)
	}
}
