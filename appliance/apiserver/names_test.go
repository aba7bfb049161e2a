package apiserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// Every name that enters through a path or a body is checked against its
// Kubernetes rule: a 400 that says the rule, and nothing stored.
func TestNamesAreChecked(t *testing.T) {
	c, b := newTestAPI(t)
	ctx := context.Background()
	if _, err := c.RegisterNode(ctx, state.Node{Name: "n1", Address: "node-1.example:10250"}); err != nil {
		t.Fatal(err)
	}
	pod := state.Pod{Namespace: "default", Name: "p1", Spec: objects.PodSpec{Containers: []objects.Container{{Name: "web", Image: "i"}}}}
	if _, err := b.Propose(ctx, []state.Command{state.NewCommand(state.CmdCreatePod, pod),
		state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "default/p1", NodeName: "n1"})}); err != nil {
		t.Fatal(err)
	}
	before := len(b.State().Nodes)
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/v1/nodes", `{"name": "../../etc"}`, `invalid node name "../../etc": must be a DNS-1123 subdomain`},
		{"POST", "/v1/nodes", `{"name": "Node1"}`, `invalid node name "Node1"`},
		{"POST", "/v1/nodes", `{"name": "` + strings.Repeat("a", 254) + `"}`, `invalid node name`},
		{"POST", "/v1/nodes", `{"name": "n2", "labels": {"bad key!": "v"}}`, `invalid label key "bad key!"`},
		{"POST", "/v1/nodes", `{"name": "n2", "labels": {"zone": "a b"}}`, `invalid label value "a b"`},
		{"POST", "/v1/nodes", `{"name": "n2", "address": "evil.example/x?:1"}`, `invalid node address`},
		{"POST", "/v1/nodes", `{"name": "n2", "address": "10.0.0.1:99999"}`, `invalid node address`},
		{"POST", "/v1/nodes", `{"name": "n2", "address": "10.0.0.1"}`, `invalid node address`},
		{"POST", "/v1/nodes/..%2F..%2Fetc/heartbeat", ``, `invalid node name "../../etc"`},
		{"GET", "/v1/nodes/..%2F..%2Fetc/pods", ``, `invalid node name`},
		{"GET", "/v1/nodes/n%00/pods", ``, `invalid node name "n\x00"`}, // escaped, never raw
		{"PUT", "/v1/pods/Default/p1/status", `{}`, `invalid namespace "Default": must be a DNS-1123 label`},
		{"PUT", "/v1/pods/default/..%2Fp1/status", `{}`, `invalid pod name "../p1"`},
		{"DELETE", "/v1/pods/default/p1%2F..", ``, `invalid pod name`},
		{"PUT", "/v1/pods/default/p1/status", `{"containers": [{"name": "../x"}]}`, `pod default/p1 has no container "../x"`},
		{"PUT", "/v1/pods/default/p1/status", `{"ip": "10.0.0.1; drop"}`, `invalid pod IP`},
		{"GET", "/v1/pods/default/p1/logs?container=../../../../var/log/dpkg", ``, `container name is not valid for pod`},
		{"GET", "/v1/pods/default/p%00/logs", ``, `invalid pod name`},
		{"DELETE", "/v1/tokens/..%2F..", ``, `invalid token ID "../.."`},
		{"POST", "/v1/tokens", `{"role": "read-only", "description": "\u001b[31mred"}`, `control characters`},
	} {
		req, _ := http.NewRequest(tc.method, c.Server()+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		readBody(&body, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.String(), jsonQuote(tc.want)) {
			t.Errorf("%s %s %s: %d %s, want 400 with %q", tc.method, tc.path, tc.body, resp.StatusCode, body.String(), tc.want)
		}
	}
	if n := len(b.State().Nodes); n != before {
		t.Errorf("refused registrations stored nodes: %d, want %d", n, before)
	}
}

// jsonQuote is s as it appears inside a JSON string (the error bodies).
func jsonQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// `berth delete node` removes a node and its pods, even one whose name
// was stored before names were checked; only admins may.
func TestDeleteNode(t *testing.T) {
	c, b := newTestAPI(t)
	ctx := context.Background()
	pod := state.Pod{Namespace: "default", Name: "p1", Spec: objects.PodSpec{Containers: []objects.Container{{Name: "web", Image: "i"}}}}
	if _, err := b.Propose(ctx, []state.Command{state.NewCommand(state.CmdRegisterNode, state.Node{Name: "../../etc"}),
		state.NewCommand(state.CmdCreatePod, pod), state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "default/p1", NodeName: "../../etc"})}); err != nil {
		t.Fatal(err)
	}
	var e *api.Error
	if err := api.NewClient(c.Server(), readOnly).DeleteNode(ctx, "../../etc"); !errors.As(err, &e) || e.Code != http.StatusForbidden {
		t.Fatalf("a read-only token deleted a node: %v", err)
	}
	if err := c.DeleteNode(ctx, "../../etc"); err != nil {
		t.Fatal(err)
	}
	if st := b.State(); len(st.Nodes) != 0 || st.Pods.Len() != 0 {
		t.Fatalf("after delete: nodes %v pods %v", st.Nodes, st.Pods)
	}
	if evs := b.State().Events; len(evs) != 1 || evs[0].Reason != "RemovingNode" || evs[0].Message != "Removing node ../../etc and its 1 pods (by admin abcdef)" {
		t.Errorf("events %+v, want who removed the node", evs)
	}
	if err := c.DeleteNode(ctx, "../../etc"); !errors.As(err, &e) || e.Code != http.StatusNotFound {
		t.Fatalf("deleting it again: %v", err)
	}
}

// berth cordon and drain set the node's flags; only admins may.
func TestNodeScheduling(t *testing.T) {
	c, b := newTestAPI(t)
	ctx := context.Background()
	if _, err := b.Propose(ctx, []state.Command{state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1"})}); err != nil {
		t.Fatal(err)
	}
	var e *api.Error
	if _, err := api.NewClient(c.Server(), readOnly).SetNodeScheduling(ctx, state.NodeScheduling{Name: "n1", Unschedulable: true}); !errors.As(err, &e) || e.Code != http.StatusForbidden {
		t.Fatalf("a read-only token cordoned a node: %v", err)
	}
	n, err := c.SetNodeScheduling(ctx, state.NodeScheduling{Name: "n1", Drain: true})
	if err != nil || !n.Unschedulable || !n.Draining {
		t.Fatalf("drain: %+v %v", n, err)
	}
	if n, err = c.SetNodeScheduling(ctx, state.NodeScheduling{Name: "n1"}); err != nil || n.Unschedulable || n.Draining {
		t.Fatalf("uncordon: %+v %v", n, err)
	}
	if _, err := c.SetNodeScheduling(ctx, state.NodeScheduling{Name: "n2"}); !errors.As(err, &e) || e.Code != http.StatusNotFound {
		t.Fatalf("an unknown node: %v", err)
	}
	var reasons []string
	for _, ev := range b.State().Events {
		reasons = append(reasons, ev.Reason)
	}
	if want := []string{"NodeDraining", "NodeSchedulable"}; !slices.Equal(reasons, want) {
		t.Errorf("node events %q, want %q", reasons, want)
	}
}

// A route whose path wildcard has no name rule cannot be registered.
func TestEveryWildcardHasARule(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a route with an unknown wildcard was accepted")
		}
	}()
	pathNamesOf("GET /v1/things/{thing}")
}
