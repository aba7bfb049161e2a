package state_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

func TestApplyRevisions(t *testing.T) {
	t.Parallel()
	s := &state.State{}
	statetest.MustApply(t, s, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c1", Status: state.RevisionApplied, Time: statetest.T0,
		Objects: []state.Object{{ID: objects.ObjectID{Kind: "Namespace", Name: "ns"}, Digest: "d1", JSON: json.RawMessage(`{"kind":"Namespace"}`)}}}))
	statetest.MustApply(t, s, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c2", Status: state.RevisionRejected,
		Diagnostics: []diag.Diagnostic{{Severity: diag.Error, Rule: diag.RuleSchema, Message: "bad"}}}))
	if c := s.Current(); c == nil || c.Commit != "c1" {
		t.Fatalf("a rejected revision replaced the applied one: %+v", c)
	}
	statetest.MustApply(t, s, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c3", Status: state.RevisionApplied}))
	want := []state.RevisionStatus{state.RevisionSuperseded, state.RevisionRejected, state.RevisionApplied}
	for i, r := range s.Revisions {
		if r.Status != want[i] {
			t.Errorf("revision %s: status %s, want %s", r.Commit, r.Status, want[i])
		}
	}
	if string(s.Revisions[0].Objects[0].JSON) != `{"kind":"Namespace"}` {
		t.Errorf("object JSON = %s", s.Revisions[0].Objects[0].JSON)
	}
}

// The state keeps a bounded history: the newest revisions, and the
// applied one even when rejected commits have pushed it out of them.
func TestApplyRevisionHistoryIsBounded(t *testing.T) {
	t.Parallel()
	s := &state.State{}
	add := func(commit string, st state.RevisionStatus, limit int) {
		statetest.MustApply(t, s, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: commit, Status: st, HistoryLimit: limit}))
	}
	commits := func() string {
		var cs []string
		for _, r := range s.Revisions {
			cs = append(cs, r.Commit)
		}
		return strings.Join(cs, " ")
	}
	for i := range state.DefaultRevisionHistory + 20 {
		add(fmt.Sprint("a", i), state.RevisionApplied, 0)
	}
	if len(s.Revisions) != state.DefaultRevisionHistory || s.Revisions[0].Commit != "a20" {
		t.Fatalf("%d revisions from %s, want the newest %d", len(s.Revisions), s.Revisions[0].Commit, state.DefaultRevisionHistory)
	}
	add("good", state.RevisionApplied, 3)
	for i := range 5 {
		add(fmt.Sprint("bad", i), state.RevisionRejected, 3)
	}
	if got, want := commits(), "good bad2 bad3 bad4"; got != want {
		t.Fatalf("revisions %q, want %q: the newest 3 and the applied one", got, want)
	}
	if s.Current().Commit != "good" {
		t.Fatalf("current %s", s.Current().Commit)
	}
	add("next", state.RevisionApplied, 3)
	if got, want := commits(), "bad3 bad4 next"; got != want {
		t.Fatalf("revisions %q, want %q", got, want)
	}
}

func TestApplyNodes(t *testing.T) {
	t.Parallel()
	s := statetest.Cluster(t)
	if got := s.Nodes["n2"].PodCIDR; got != "10.244.1.0/24" {
		t.Errorf("n2 PodCIDR = %s", got)
	}
	// Re-registering keeps the CIDR whatever the node asks for.
	statetest.MustApply(t, s, state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1", Address: "10.0.0.1", PodCIDR: "10.244.9.0/24"}))
	if n := s.Nodes["n1"]; n.PodCIDR != "10.244.0.0/24" || n.Address != "10.0.0.1" {
		t.Errorf("re-registered n1 = %+v", n)
	}
	statetest.MustApply(t, s, state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n3", PodCIDR: "10.244.7.0/24"}))
	if got := s.Nodes["n3"].PodCIDR; got != "10.244.7.0/24" {
		t.Errorf("n3 PodCIDR = %s", got)
	}

	statetest.MustApply(t, s, state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n1", Ready: true, Time: statetest.T0}))
	statetest.MustApply(t, s, state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n1", Ready: true, Time: statetest.T0.Add(time.Hour)}))
	if n := s.Nodes["n1"]; !n.Ready || !n.Transition.Equal(statetest.T0) {
		t.Errorf("Transition must only move when Ready changes: %+v", n)
	}

	statetest.MustReject(t, s, "node has no name", state.NewCommand(state.CmdRegisterNode, state.Node{}))
	statetest.MustReject(t, s, `no node "ghost"`, state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "ghost", Ready: true}))
}

func TestApplyPods(t *testing.T) {
	t.Parallel()
	s := statetest.Cluster(t)
	statetest.MustReject(t, s, "pod ns/a exists", state.NewCommand(state.CmdCreatePod, statetest.Pod("ns", "a")))
	statetest.MustReject(t, s, "no pod ns/zz", state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/zz", NodeName: "n1"}))
	statetest.MustReject(t, s, `no node "ghost"`, state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/b", NodeName: "ghost"}))
	statetest.MustReject(t, s, "bound to n1 already", state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/a", NodeName: "n2"}))

	statetest.MustApply(t, s,
		state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/a", NodeName: "n1"}), // same node: no-op
		state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/b", NodeName: "n2"}),
		state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "ns/a", Status: state.PodStatus{Phase: state.PodRunning, Ready: true, IP: "10.244.0.5",
			Containers: []state.ContainerStatus{{Name: "c", State: "running", Ready: true}}}}),
		state.NewCommand(state.CmdTerminatePod, state.PodRef{Key: "ns/b"}),
		// Stale reports about pods already gone are not errors.
		state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "ns/gone", Status: state.PodStatus{Phase: state.PodFailed}}),
		state.NewCommand(state.CmdTerminatePod, state.PodRef{Key: "ns/gone"}),
		state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/gone"}),
	)
	a, b := s.Pods.Get("ns/a"), s.Pods.Get("ns/b")
	if a.Status.Phase != state.PodRunning || a.Status.IP != "10.244.0.5" || len(a.Status.Containers) != 1 {
		t.Errorf("pod a status = %+v", a.Status)
	}
	if b.NodeName != "n2" || !b.Terminating {
		t.Errorf("pod b = %+v", b)
	}
	statetest.MustApply(t, s, state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/b"}))
	if s.Pods.Get("ns/b") != nil || s.Pods.Len() != 1 {
		t.Errorf("pods after delete: %v", s.Pods)
	}
}

func TestApplyServiceIPs(t *testing.T) {
	t.Parallel()
	s := statetest.Cluster(t)
	statetest.MustReject(t, s, "ClusterIP 10.96.0.10 is taken by ns/web", state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/api", IP: "10.96.0.10"}))
	statetest.MustApply(t, s,
		state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/web", IP: "10.96.0.10"}), // again: no-op
		state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/web", IP: ""}),
		state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/api", IP: "10.96.0.10"}),
	)
	if want := map[string]string{"ns/api": "10.96.0.10"}; !reflect.DeepEqual(s.ServiceIPs, want) {
		t.Errorf("ServiceIPs = %v, want %v", s.ServiceIPs, want)
	}
}

// A node port is one Service's, but one Service may give one number to
// its TCP and its UDP port (DNS on 53 both ways); released, it is free.
func TestApplyNodePorts(t *testing.T) {
	t.Parallel()
	s := statetest.Cluster(t)
	np := func(svc, proto string, port, nodePort int32) state.Command {
		return state.NewCommand(state.CmdSetNodePort, state.ServiceNodePort{Service: svc, Protocol: proto, Port: port, NodePort: nodePort})
	}
	statetest.MustApply(t, s, np("ns/dns", "UDP", 53, 30053), np("ns/dns", "TCP", 53, 30053), np("ns/web", "TCP", 80, 30080))
	statetest.MustReject(t, s, "node port 30053 is taken by ns/dns/TCP/53", np("ns/api", "UDP", 53, 30053))
	statetest.MustReject(t, s, "node port 30080 is taken by ns/web/TCP/80", np("ns/web", "TCP", 8080, 30080))
	statetest.MustReject(t, s, "want a Service and a port number", np("", "TCP", 80, 30090))
	statetest.MustApply(t, s,
		np("ns/web", "TCP", 80, 30080), // again: no-op
		np("ns/web", "TCP", 80, 0),
		np("ns/api", "TCP", 80, 30080),
	)
	want := map[string]state.ServiceNodePort{
		"ns/dns/UDP/53": {"ns/dns", "UDP", 53, 30053},
		"ns/dns/TCP/53": {"ns/dns", "TCP", 53, 30053},
		"ns/api/TCP/80": {"ns/api", "TCP", 80, 30080},
	}
	if !reflect.DeepEqual(s.NodePorts, want) {
		t.Errorf("NodePorts = %v, want %v", s.NodePorts, want)
	}
}

// TestApplyTokenUses: each join counts, at the time the command carries;
// a use of a token that is used up, expired then, revoked, not a join
// token or unknown is refused and changes nothing.
func TestApplyTokenUses(t *testing.T) {
	t.Parallel()
	s := &state.State{}
	statetest.MustApply(t, s,
		state.NewCommand(state.CmdAddToken, auth.Token{ID: "once", Hash: "h", Role: auth.RoleMasterJoin, Uses: 1, Expires: statetest.T0.Add(time.Hour)}),
		state.NewCommand(state.CmdAddToken, auth.Token{ID: "many", Hash: "h", Role: auth.RoleAgentJoin}),
		state.NewCommand(state.CmdAddToken, auth.Token{ID: "admin", Hash: "h", Role: auth.RoleAdmin}),
		state.NewCommand(state.CmdAddToken, auth.Token{ID: "gone", Hash: "h", Role: auth.RoleAgentJoin, Revoked: true}),
	)
	statetest.MustReject(t, s, "token expired: once", state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "once", Time: statetest.T0.Add(time.Hour)}))
	statetest.MustApply(t, s, state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "once", Time: statetest.T0}))
	statetest.MustReject(t, s, "token used up: once", state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "once", Time: statetest.T0}))
	for range 3 {
		statetest.MustApply(t, s, state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "many", Time: statetest.T0}))
	}
	if once, many := s.Tokens["once"], s.Tokens["many"]; once.Used != 1 || many.Used != 3 {
		t.Fatalf("uses counted: once %d, many %d", once.Used, many.Used)
	}
	statetest.MustReject(t, s, "token revoked: gone", state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "gone", Time: statetest.T0}))
	statetest.MustReject(t, s, "not a join token", state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "admin", Time: statetest.T0}))
	statetest.MustReject(t, s, "no token ghost", state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "ghost", Time: statetest.T0}))
	// Two uses of a single-use token in one batch: the batch fails whole.
	statetest.MustApply(t, s, state.NewCommand(state.CmdAddToken, auth.Token{ID: "twice", Hash: "h", Role: auth.RoleMasterJoin, Uses: 1}))
	statetest.MustReject(t, s, "command 1 (UseToken): auth: token used up: twice",
		state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "twice", Time: statetest.T0}), state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "twice", Time: statetest.T0}))
}

func TestApplyBadCommands(t *testing.T) {
	t.Parallel()
	good := state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/a"})
	for _, tc := range []struct {
		name string
		cmd  state.Command
		want string
	}{
		{"unknown version", state.Command{Version: 2, Type: state.CmdDeletePod, Payload: good.Payload}, "unknown command version 2"},
		{"no version", state.Command{Type: state.CmdDeletePod, Payload: good.Payload}, "unknown command version 0"},
		{"unknown type", state.Command{Version: state.CommandVersion, Type: "Explode", Payload: json.RawMessage(`{}`)}, `unknown command type "Explode"`},
		{"payload of the wrong shape", state.Command{Version: state.CommandVersion, Type: state.CmdRegisterNode, Payload: json.RawMessage(`{"name":5}`)}, "bad payload"},
		{"payload not an object", state.Command{Version: state.CommandVersion, Type: state.CmdSetPodStatus, Payload: json.RawMessage(`"x"`)}, "bad payload"},
		{"no payload", state.Command{Version: state.CommandVersion, Type: state.CmdBindPod}, "bad payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := statetest.Cluster(t)
			// The good command comes first: it must be undone too.
			statetest.MustReject(t, s, "command 1 ("+string(tc.cmd.Type)+"): "+tc.want, good, tc.cmd)
			if s.Pods.Get("ns/a") == nil {
				t.Fatal("the good half of a failed batch was applied")
			}
		})
	}
}

// TestApplyLeavesThePreviousStateAlone applies one command of every type to
// a shallow copy of a state, as the FSM does, and checks that the state
// before, which readers may still hold, is exactly as it was.
func TestApplyLeavesThePreviousStateAlone(t *testing.T) {
	before := statetest.Cluster(t)
	statetest.MustApply(t, before, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c1", Status: state.RevisionApplied}),
		state.NewCommand(state.CmdAddToken, auth.Token{ID: "t1", Hash: "h1", Role: auth.RoleAdmin}), state.NewCommand(state.CmdSetMasterAPI, state.MasterAPI{ID: "m1", URL: "https://m1"}),
		state.NewCommand(state.CmdAddToken, auth.Token{ID: "j1", Hash: "h1", Role: auth.RoleAgentJoin}))
	// Spare capacity is where an append into a shared slice would land.
	before.Revisions = slices.Grow(before.Revisions, 4)
	want := statetest.Encoded(t, before)

	next := *before
	statetest.MustApply(t, &next,
		state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c2", Status: state.RevisionApplied}),
		state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1", Address: "10.0.0.9"}),
		state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n3"}),
		state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n2", Ready: true, Time: statetest.T0}),
		state.NewCommand(state.CmdCreatePod, statetest.Pod("ns", "c")),
		state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/b", NodeName: "n2"}),
		state.NewCommand(state.CmdTerminatePod, state.PodRef{Key: "ns/a"}),
		state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "ns/a", Status: state.PodStatus{Phase: "Running"}}),
		state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/b"}),
		state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/web", IP: ""}),
		state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/api", IP: "10.96.0.11"}),
		state.NewCommand(state.CmdAddToken, auth.Token{ID: "t2", Hash: "h2", Role: auth.RoleAdmin}),
		state.NewCommand(state.CmdRevokeToken, state.TokenRef{ID: "t1"}),
		state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "j1", Time: statetest.T0}),
		state.NewCommand(state.CmdSetCA, state.ClusterCA{CertPEM: []byte("cert"), EncryptedKey: []byte("key")}),
		state.NewCommand(state.CmdSetMasterAPI, state.MasterAPI{ID: "m1"}),
	)
	if !bytes.Equal(want, statetest.Encoded(t, before)) {
		t.Fatalf("applying a batch changed the state it started from")
	}
	if len(next.Revisions) != 2 || next.Revisions[0].Status != state.RevisionSuperseded || next.Pods.Get("ns/a").Status.Phase != "Running" ||
		!next.Nodes["n2"].Ready || !next.Tokens["t1"].Revoked || next.Tokens["j1"].Used != 1 || next.MasterAPIs["m1"] != "" || next.ServiceIPs["ns/api"] == "" {
		t.Fatalf("the batch did not apply as expected: %+v", next)
	}
}
