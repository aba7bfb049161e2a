package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// newBackend is an in-memory store holding the admin token token and the
// read-only token readOnly.
func newBackend(t testing.TB) *statetest.Store {
	st := statetest.NewStore()
	var cmds []state.Command
	for secret, role := range map[string]auth.Role{token: auth.RoleAdmin, readOnly: auth.RoleReadOnly} {
		tok, err := auth.FromSecret(secret, role, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, state.NewCommand(state.CmdAddToken, tok))
	}
	if _, err := st.Propose(context.Background(), cmds); err != nil {
		t.Fatal(err)
	}
	return st
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Tokens of the test API's store, in kubeadm's format.
const (
	token    = "abcdef.0123456789abcdef"
	readOnly = "rdonly.0123456789abcdef"
)

func newTestAPI(t *testing.T) (*api.Client, *statetest.Store) {
	b := newBackend(t)
	srv := httptest.NewServer(NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{}}))
	t.Cleanup(srv.Close)
	return api.NewClient(srv.URL, token), b
}

func TestAuth(t *testing.T) {
	c, _ := newTestAPI(t)
	bad := api.NewClient(c.Server(), "wrong")
	_, err := bad.Status(context.Background())
	var e *api.Error
	if !errors.As(err, &e) || e.Code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
	resp, err := http.Get(c.Server() + "/v1/nodes")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %v %v", resp.StatusCode, err)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(c.Server() + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %v %v", path, resp.StatusCode, err)
		}
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedRequests(t *testing.T) {
	c, _ := newTestAPI(t)
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/v1/nodes", `{"name": "a", "cpu": 1}`, `unknown field`},
		{"POST", "/v1/nodes", `{"name": `, "malformed request body"},
		{"POST", "/v1/nodes", `{}`, "node name is required"},
		{"POST", "/v1/nodes", `{"name": "a"} {}`, "more than one JSON value"},
		{"PUT", "/v1/pods/default/x/status", `{"phase": 3}`, "malformed request body"},
		{"GET", "/v1/pods?index=abc", ``, "index: "},
		{"GET", "/v1/pods?index=1&wait=forever", ``, "wait: want a duration"},
	} {
		req, _ := http.NewRequest(tc.method, c.Server()+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		_, _ = readBody(&body, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.String(), tc.want) {
			t.Errorf("%s %s %s: %d %s, want 400 with %q", tc.method, tc.path, tc.body, resp.StatusCode, body.String(), tc.want)
		}
	}
	var e *api.Error
	if err := c.Heartbeat(context.Background(), "ghost", api.Heartbeat{}); !errors.As(err, &e) || e.Code != http.StatusNotFound {
		t.Errorf("heartbeat of unknown node: %v", err)
	}
}

func TestAgentFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, b := newBubbleAPI(t)
		ctx := t.Context()
		if n, err := c.RegisterNode(ctx, state.Node{Name: "n1", CPUMilli: 2000, MemoryBytes: 1 << 30}); err != nil || n.PodCIDR == "" {
			t.Fatal(err)
		}
		cm := objects.ConfigMap{Data: map[string]string{"k": "v"}}
		cm.APIVersion, cm.Kind, cm.Metadata = "v1", "ConfigMap", objects.ObjectMeta{Name: "cfg", Namespace: "default"}
		other := cm
		other.Metadata.Name = "unrelated"
		rev := state.Revision{Commit: "abc", Status: state.RevisionApplied}
		for _, o := range []objects.Object{&cm, &other} {
			rev.Objects = append(rev.Objects, state.Object{ID: objects.ObjectID{Kind: "ConfigMap", Namespace: "default", Name: o.GetObjectMeta().Name}, JSON: mustJSON(t, o)})
		}
		pod := state.Pod{Namespace: "default", Name: "p1", Spec: objects.PodSpec{Containers: []objects.Container{{Name: "c", Image: "i",
			Env: []objects.EnvVar{{Name: "A", ValueFrom: &objects.EnvVarSource{ConfigMapKeyRef: &objects.KeySelector{Name: "cfg", Key: "k"}}}}}}}}
		if _, err := b.Propose(ctx, []state.Command{state.NewCommand(state.CmdAddRevision, rev), state.NewCommand(state.CmdCreatePod, pod),
			state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "default/p1", NodeName: "n1"})}); err != nil {
			t.Fatal(err)
		}

		a, idx, err := c.NodePods(ctx, "n1", nil)
		if err != nil || len(a.Pods) != 1 || a.ConfigMaps["default/cfg"] == nil || len(a.ConfigMaps) != 1 || len(a.Routes) != 0 {
			t.Fatalf("assignment %+v %v", a, err)
		}
		// Other nodes' pods are reached through their addresses; one known by
		// a host name gets no route.
		for _, n := range []state.Node{{Name: "n2", Address: "10.0.0.2:10250"}, {Name: "n3", Address: "worker-3:10250"}} {
			if _, err := c.RegisterNode(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		a, idx, err = c.NodePods(ctx, "n1", nil)
		if want := []api.PodRoute{{Node: "n2", PodCIDR: b.State().Nodes["n2"].PodCIDR, Via: "10.0.0.2"}}; err != nil || !reflect.DeepEqual(a.Routes, want) {
			t.Fatalf("routes %+v %v, want %+v", a.Routes, err, want)
		}
		// A blocking query returns when the state moves past the index...
		done := make(chan api.NodeAssignment)
		go func() {
			a, _, _ := c.NodePods(ctx, "n1", &api.Watch{Index: idx, Wait: 10 * time.Second})
			done <- a
		}()
		synctest.Wait() // the watch is blocked in the server
		if err := c.SetPodStatus(ctx, "default", "p1", state.PodStatus{Phase: state.PodRunning, Ready: true, IP: "10.244.0.5"}); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-done:
			if a.Pods[0].Status.IP != "10.244.0.5" {
				t.Fatalf("watch saw %+v", a.Pods[0].Status)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocking query did not return on change")
		}
		// ...and after the wait when nothing changes.
		start := time.Now()
		if _, _, err := c.NodePods(ctx, "n1", &api.Watch{Index: idx + 10, Wait: 200 * time.Millisecond}); err != nil || time.Since(start) != 200*time.Millisecond {
			t.Fatalf("wait timeout: %v after %v", err, time.Since(start))
		}

		// Deleting a running pod terminates it; deleting it again removes it.
		if err := c.DeletePod(ctx, "default", "p1"); err != nil || !b.State().Pods.Get("default/p1").Terminating {
			t.Fatalf("first delete: %v", err)
		}
		if err := c.DeletePod(ctx, "default", "p1"); err != nil || b.State().Pods.Get("default/p1") != nil {
			t.Fatalf("second delete: %v", err)
		}
		// The first, a person's, is told on the pod; the second stopped nothing.
		var killed []string
		for _, e := range b.State().Events {
			if e.Reason == "Killing" {
				killed = append(killed, e.Object.String()+": "+e.Message)
			}
		}
		if want := []string{"Pod/default/p1: Stopping pod: deleted by admin abcdef"}; !slices.Equal(killed, want) {
			t.Errorf("Killing events %q, want %q", killed, want)
		}
		st, err := c.Status(ctx)
		if err != nil || st.Commit != "abc" || st.ReadyNodes != 3 {
			t.Fatalf("status %+v %v", st, err)
		}
	})
}

// applyRevision records commit as the applied revision, holding objs.
func applyRevision(t *testing.T, b *statetest.Store, commit string, objs ...state.Object) {
	t.Helper()
	rev := state.Revision{Commit: commit, Status: state.RevisionApplied, Objects: objs}
	if _, err := b.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdAddRevision, rev)}); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readBody(w *strings.Builder, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}

// TestClientFailover: a client given several masters skips one that does
// not answer and stays with the one that does.
func TestClientFailover(t *testing.T) {
	good, _ := newTestAPI(t)
	dead := "http://" + freeAddr(t) // nothing listens there any more
	c := api.NewClient(dead+", "+good.Server()+"/", token)
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("failover: %v", err)
	}
	if c.Server() != good.Server() {
		t.Errorf("client talks to %s, want the live master %s", c.Server(), good.Server())
	}
	all := api.NewClient(dead+","+"http://"+freeAddr(t), token)
	if _, err := all.Status(context.Background()); err == nil {
		t.Error("no master answers, yet Status succeeded")
	}
}

// TestClientLeavesASilentMaster: a master that accepts the connection but
// never answers (a half-open connection to a partitioned master) is left
// for the next after the answer timeout; before, an agent's heartbeat hung
// on it until the node went NotReady. A blocking query may take its wait.
func TestClientLeavesASilentMaster(t *testing.T) {
	good, _ := newTestAPI(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // read nothing, answer nothing
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := api.NewClient("http://"+silent.Addr().String()+","+good.Server(), token, api.WithAnswerTimeout(200*time.Millisecond))
	start := time.Now()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("with a silent master first: %v", err)
	}
	if c.Server() != good.Server() || time.Since(start) > 5*time.Second {
		t.Errorf("client talks to %s after %s, want %s within a few answer timeouts", c.Server(), time.Since(start), good.Server())
	}
	// A blocking query is not cut off by the answer timeout.
	_, index, err := c.Pods(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, _, err := c.Pods(ctx, "", &api.Watch{Index: index, Wait: time.Second}); err != nil || time.Since(start) < 900*time.Millisecond {
		t.Errorf("a 1 s blocking query with a 200 ms answer timeout: %v after %s", err, time.Since(start))
	}
}

// A heartbeat that reports a problem keeps the node alive but NotReady
// with the problem as its reason; one without makes it Ready again, and a
// problem longer than a reason should be is refused.
func TestHeartbeatProblem(t *testing.T) {
	c, b := newTestAPI(t)
	ctx := context.Background()
	if _, err := c.RegisterNode(ctx, state.Node{Name: "n1"}); err != nil {
		t.Fatal(err)
	}
	node := func() *state.Node { return b.State().Nodes["n1"] }
	if err := c.Heartbeat(ctx, "n1", api.Heartbeat{}); err != nil || !node().Ready {
		t.Fatalf("plain heartbeat: %v, ready %v", err, node().Ready)
	}
	if err := c.Heartbeat(ctx, "n1", api.Heartbeat{Problem: "container runtime is down"}); err != nil || node().Ready || node().Reason != "container runtime is down" {
		t.Fatalf("heartbeat with a problem: %v, %+v", err, node())
	}
	index := b.State().Index
	if err := c.Heartbeat(ctx, "n1", api.Heartbeat{Problem: "container runtime is down"}); err != nil || b.State().Index != index {
		t.Fatalf("the same problem again was written again (index %d -> %d): %v", index, b.State().Index, err)
	}
	var e *api.Error
	if err := c.Heartbeat(ctx, "n1", api.Heartbeat{Problem: strings.Repeat("x", maxProblem+1)}); !errors.As(err, &e) || e.Code != http.StatusBadRequest {
		t.Fatalf("an over-long problem: %v", err)
	}
	if err := c.Heartbeat(ctx, "n1", api.Heartbeat{}); err != nil || !node().Ready || node().Reason != "" {
		t.Fatalf("heartbeat without a problem: %v, %+v", err, node())
	}
	// Each change of condition is an event on the node (registered
	// ready, it was not told ready before the problem).
	var got []string
	for _, e := range b.State().Events {
		got = append(got, fmt.Sprintf("%s %s x%d: %s", e.Type, e.Reason, e.Count, e.Message))
	}
	want := []string{"Warning NodeNotReady x1: Node n1 status is now: NodeNotReady (container runtime is down)", "Normal NodeReady x1: Node n1 status is now: NodeReady"}
	if !slices.Equal(got, want) {
		t.Errorf("node events %q, want %q", got, want)
	}
}

// A node's watch wakes when its own assignment changes, not when the state
// changes elsewhere: every change used to wake every agent, each answer
// computed again and sent whole. The clock is synctest's, so the times are
// exact.
func TestWatchWakesOnlyForItsOwnAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, b := newBubbleAPI(t)
		ctx := t.Context()
		for _, n := range []string{"n1", "n2"} {
			if _, err := c.RegisterNode(ctx, state.Node{Name: n}); err != nil {
				t.Fatal(err)
			}
		}
		pod := state.Pod{Namespace: "default", Name: "p1", Spec: objects.PodSpec{Containers: []objects.Container{{Name: "c", Image: "i"}}}}
		if _, err := b.Propose(ctx, []state.Command{state.NewCommand(state.CmdCreatePod, pod),
			state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "default/p1", NodeName: "n1"})}); err != nil {
			t.Fatal(err)
		}
		_, index, err := c.NodePods(ctx, "n1", &api.Watch{Index: 0, Wait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(200 * time.Millisecond) // elsewhere: n2's readiness
			b.Propose(ctx, []state.Command{state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n2", Ready: false, Time: time.Now()})})
			time.Sleep(600 * time.Millisecond) // n1's own pod
			b.Propose(ctx, []state.Command{state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "default/p1", Status: state.PodStatus{Phase: state.PodRunning}})})
		}()
		start := time.Now()
		a, _, err := c.NodePods(ctx, "n1", &api.Watch{Index: index, Wait: 5 * time.Second})
		took := time.Since(start)
		if err != nil || len(a.Pods) != 1 || a.Pods[0].Status.Phase != state.PodRunning {
			t.Fatalf("the watch answered after %s with %+v (%v), want the pod's new status", took, a, err)
		}
		if took != 800*time.Millisecond {
			t.Fatalf("the watch woke after %s, want at the pod's change (800ms)", took)
		}
	})
}

// newBubbleAPI is an API on an in-memory store whose client calls the
// handler in the calling goroutine: no sockets, so it runs inside a
// synctest bubble.
func newBubbleAPI(t *testing.T) (*api.Client, *statetest.Store) {
	b := newBackend(t)
	srv := NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{}})
	return api.NewClient("http://api", token, api.WithHTTPClient(&http.Client{Transport: handlerTransport{srv}})), b
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}
