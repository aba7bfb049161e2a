package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
)

// describe's Events section is kubectl's: Type Reason Age From Message,
// a repeat's age as "(xN over AGE)", and "<none>" without events.
func TestDescribeEventsSection(t *testing.T) {
	now := time.Now()
	src := state.EventSource{Component: "kubelet", Host: "n1"}
	pod := state.ObjectRef{Kind: "Pod", Namespace: "shop", Name: "web-1"}
	probe := state.NewEvent(state.EventWarning, "Unhealthy", pod, src, now.Add(-2*time.Minute), "Readiness probe failed:\nconnection refused")
	probe.Count, probe.LastTimestamp = 3, now.Add(-30*time.Second)
	var out bytes.Buffer
	printEventsSection(&out, []state.Event{
		state.NewEvent(state.EventNormal, "Scheduled", pod, state.EventSource{Component: "default-scheduler"}, now.Add(-3*time.Minute), "Successfully assigned shop/web-1 to n1"),
		probe,
	})
	want := []string{
		"Events:",
		"Type Reason Age From Message",
		"---- ------ ---- ---- -------",
		"Normal Scheduled 3m default-scheduler Successfully assigned shop/web-1 to n1",
		"Warning Unhealthy 30s (x3 over 2m) kubelet Readiness probe failed: connection refused",
	}
	if got := strings.TrimSpace(squeeze(out.String())); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", out.String(), strings.Join(want, "\n"))
	}
	out.Reset()
	printEventsSection(&out, nil)
	if out.String() != "Events:  <none>\n" {
		t.Errorf("no events: %q", out.String())
	}
}

// TestGetAndDescribeEvents: against a real master, `berth get events`
// lists what an agent reported, aggregated; -n filters; `describe node`
// ends with the node's events; -w prints what is recorded after the list.
func TestGetAndDescribeEvents(t *testing.T) {
	m, conf := startTestMaster(t, appliance.Config{})
	admin := api.NewClient(m.URL(), m.AdminToken(), api.WithHTTPClient(m.HTTPClient()))
	ctx := context.Background()
	if _, err := admin.RegisterNode(ctx, state.Node{Name: "n1"}); err != nil {
		t.Fatal(err)
	}
	full := state.NewEvent(state.EventWarning, "DiskFull", state.ObjectRef{Kind: "Node", Name: "n1"}, state.EventSource{Component: "kubelet"}, time.Now(), "disk is full")
	for range 2 {
		if _, err := admin.RecordEvents(ctx, "n1", []state.Event{full}); err != nil {
			t.Fatal(err)
		}
	}

	out, code := run(t, "get", "events", "--config", conf)
	// The ages are 0s or 1s, as the clock turns.
	ages := regexp.MustCompile(`\b[01]s\b`)
	if got := ages.ReplaceAllString(squeeze(out), "AGE"); code != 0 || !strings.Contains(got, "NAMESPACE LAST SEEN TYPE REASON OBJECT MESSAGE\n<none> AGE (x2 over AGE) Warning DiskFull node/n1 disk is full") {
		t.Errorf("get events: %d\n%s", code, out)
	}
	if out, code := run(t, "get", "ev", "-n", "shop", "--config", conf); code != 0 || strings.TrimSpace(squeeze(out)) != "LAST SEEN TYPE REASON OBJECT MESSAGE" {
		t.Errorf("get events -n shop: %d\n%s", code, out)
	}
	if out, code := run(t, "get", "events", "--for", "no/n1", "--config", conf); code != 0 || !strings.Contains(out, "DiskFull") {
		t.Errorf("get events --for no/n1: %d\n%s", code, out)
	}
	if out, code := run(t, "get", "events", "--for", "pod/n1", "--config", conf); code != 0 || strings.Contains(out, "DiskFull") {
		t.Errorf("get events --for pod/n1: %d\n%s", code, out)
	}
	if out, code := run(t, "get", "events", "--for", "n1", "--config", conf); code != 2 {
		t.Errorf("get events --for n1: %d\n%s", code, out)
	}
	if out, code := run(t, "get", "events", "-n", "Not_A_Namespace", "--config", conf); code != 1 {
		t.Errorf("get events with a bad namespace: %d %s", code, out)
	}
	// -o json: a v1 List of v1 Events, every field a Kubernetes one.
	out, code = run(t, "get", "events", "-o", "json", "--config", conf)
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || list.Kind != "List" || len(list.Items) != 1 {
		t.Fatalf("get events -o json: %d %v\n%s", code, err, out)
	}
	var ev corev1.Event
	dec := json.NewDecoder(bytes.NewReader(list.Items[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil || ev.Kind != "Event" || ev.InvolvedObject.Kind != "Node" || ev.InvolvedObject.Name != "n1" ||
		ev.Reason != "DiskFull" || ev.Count != 2 || ev.Type != "Warning" || ev.Source.Component != "kubelet" || !strings.HasPrefix(ev.Name, "n1.") {
		t.Errorf("the event as a v1 Event: %+v %v", ev, err)
	}
	if out, code := run(t, "get", "events", "-o", "jsonpath={.items[*].reason}", "--config", conf); code != 0 || out != "DiskFull" {
		t.Errorf("get events -o jsonpath: %d %q", code, out)
	}
	if out, code := run(t, "get", "events", "-o", "name", "--config", conf); code != 0 || !strings.HasPrefix(out, "event/n1.") {
		t.Errorf("get events -o name: %d %q", code, out)
	}
	out, code = run(t, "describe", "node", "n1", "--config", conf)
	if got := ages.ReplaceAllString(squeeze(out), "AGE"); code != 0 || !strings.Contains(got, "Events:\nType Reason Age From Message\n---- ------ ---- ---- -------\nWarning DiskFull AGE (x2 over AGE) kubelet disk is full") {
		t.Errorf("describe node: %d\n%s", code, out)
	}

	// The event recorded once the list is out comes from the blocking
	// query, which starts from the list's index, so it cannot be missed.
	wctx, cancel := context.WithCancel(ctx)
	watched := &output{wrote: make(chan struct{}, 1)}
	done := make(chan error)
	go func() { done <- getEvents(wctx, watched, admin, api.EventFilter{}, &printer{}, true) }()
	watched.waitFor(t, "Warning DiskFull node/n1 disk is full")
	back := state.NewEvent(state.EventNormal, "DiskFreed", state.ObjectRef{Kind: "Node", Name: "n1"}, state.EventSource{Component: "kubelet"}, time.Now(), "disk has room")
	if _, err := admin.RecordEvents(ctx, "n1", []state.Event{back}); err != nil {
		t.Fatal(err)
	}
	got := watched.waitFor(t, "Normal DiskFreed node/n1 disk has room")
	if strings.Count(got, "DiskFull") != 1 {
		t.Errorf("get events -w printed the old event again:\n%s", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("get events -w: %v", err)
	}
}

// output is what a command printed so far, for a test to wait on.
type output struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case o.wrote <- struct{}{}:
	default:
	}
	return o.b.Write(b)
}

// waitFor returns the output, squeezed, once it holds want.
func (o *output) waitFor(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		o.mu.Lock()
		got := squeeze(o.b.String())
		o.mu.Unlock()
		if strings.Contains(got, want) {
			return got
		}
		select {
		case <-o.wrote:
		case <-timeout:
			t.Fatalf("waiting for %q, the output is:\n%s", want, got)
		}
	}
}
