package store

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
	"github.com/berth/berth/schemas"
	"github.com/berth/berth/schemas/objects"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// cluster is a state with nodes n1 (10.244.0.0/24) and n2, pod ns/a bound
// to n1, pod ns/b unbound, and Service ns/web at 10.96.0.10.
func cluster(t testing.TB) *State {
	t.Helper()
	s := &State{}
	mustApply(t, s,
		NewCommand(CmdRegisterNode, Node{Name: "n1", Labels: map[string]string{"zone": "a"}}),
		NewCommand(CmdRegisterNode, Node{Name: "n2"}),
		NewCommand(CmdCreatePod, testPod("ns", "a")),
		NewCommand(CmdCreatePod, testPod("ns", "b")),
		NewCommand(CmdBindPod, PodBinding{Key: "ns/a", NodeName: "n1"}),
		NewCommand(CmdSetServiceIP, ServiceIP{Key: "ns/web", IP: "10.96.0.10"}),
	)
	return s
}

func testPod(ns, name string) Pod {
	return Pod{
		Namespace: ns, Name: name, Deployment: "web", TemplateHash: "h1",
		Labels:  map[string]string{"app": "web"},
		Spec:    objects.PodSpec{Containers: []objects.Container{{Name: "c", Image: "nginx"}}},
		Created: t0,
	}
}

// sameState reports whether a and b hold the same state: their JSON, which
// holds every field (the pod tables' trees may differ in shape).
func sameState(a, b *State) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// encoded is s as JSON, which holds every field of a State: two states
// with the same encoding are the same.
func encoded(t testing.TB, s *State) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustApply(t testing.TB, s *State, batch ...Command) {
	t.Helper()
	if err := Apply(s, batch); err != nil {
		t.Fatal(err)
	}
}

// mustReject applies a batch that must fail with want in its error and
// leave s exactly as it was.
func mustReject(t *testing.T, s *State, want string, batch ...Command) {
	t.Helper()
	before := encoded(t, s)
	err := Apply(s, batch)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Apply: got %v, want an error containing %q", err, want)
	}
	if !bytes.Equal(before, encoded(t, s)) {
		t.Fatalf("a failed batch changed the state")
	}
}

func TestApplyRevisions(t *testing.T) {
	t.Parallel()
	s := &State{}
	mustApply(t, s, NewCommand(CmdAddRevision, Revision{Commit: "c1", Status: RevisionApplied, Time: t0,
		Objects: []Object{{ID: objects.ObjectID{Kind: "Namespace", Name: "ns"}, Digest: "d1", JSON: json.RawMessage(`{"kind":"Namespace"}`)}}}))
	mustApply(t, s, NewCommand(CmdAddRevision, Revision{Commit: "c2", Status: RevisionRejected,
		Diagnostics: []schemas.Diagnostic{{Severity: schemas.Error, Rule: schemas.RuleSchema, Message: "bad"}}}))
	if c := s.Current(); c == nil || c.Commit != "c1" {
		t.Fatalf("a rejected revision replaced the applied one: %+v", c)
	}
	mustApply(t, s, NewCommand(CmdAddRevision, Revision{Commit: "c3", Status: RevisionApplied}))
	want := []RevisionStatus{RevisionSuperseded, RevisionRejected, RevisionApplied}
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
	s := &State{}
	add := func(commit string, st RevisionStatus, limit int) {
		mustApply(t, s, NewCommand(CmdAddRevision, Revision{Commit: commit, Status: st, HistoryLimit: limit}))
	}
	commits := func() string {
		var cs []string
		for _, r := range s.Revisions {
			cs = append(cs, r.Commit)
		}
		return strings.Join(cs, " ")
	}
	for i := range DefaultRevisionHistory + 20 {
		add(fmt.Sprint("a", i), RevisionApplied, 0)
	}
	if len(s.Revisions) != DefaultRevisionHistory || s.Revisions[0].Commit != "a20" {
		t.Fatalf("%d revisions from %s, want the newest %d", len(s.Revisions), s.Revisions[0].Commit, DefaultRevisionHistory)
	}
	add("good", RevisionApplied, 3)
	for i := range 5 {
		add(fmt.Sprint("bad", i), RevisionRejected, 3)
	}
	if got, want := commits(), "good bad2 bad3 bad4"; got != want {
		t.Fatalf("revisions %q, want %q: the newest 3 and the applied one", got, want)
	}
	if s.Current().Commit != "good" {
		t.Fatalf("current %s", s.Current().Commit)
	}
	add("next", RevisionApplied, 3)
	if got, want := commits(), "bad3 bad4 next"; got != want {
		t.Fatalf("revisions %q, want %q", got, want)
	}
}

func TestApplyNodes(t *testing.T) {
	t.Parallel()
	s := cluster(t)
	if got := s.Nodes["n2"].PodCIDR; got != "10.244.1.0/24" {
		t.Errorf("n2 PodCIDR = %s", got)
	}
	// Re-registering keeps the CIDR whatever the node asks for.
	mustApply(t, s, NewCommand(CmdRegisterNode, Node{Name: "n1", Address: "10.0.0.1", PodCIDR: "10.244.9.0/24"}))
	if n := s.Nodes["n1"]; n.PodCIDR != "10.244.0.0/24" || n.Address != "10.0.0.1" {
		t.Errorf("re-registered n1 = %+v", n)
	}
	mustApply(t, s, NewCommand(CmdRegisterNode, Node{Name: "n3", PodCIDR: "10.244.7.0/24"}))
	if got := s.Nodes["n3"].PodCIDR; got != "10.244.7.0/24" {
		t.Errorf("n3 PodCIDR = %s", got)
	}

	mustApply(t, s, NewCommand(CmdSetNodeReady, NodeReady{Name: "n1", Ready: true, Time: t0}))
	mustApply(t, s, NewCommand(CmdSetNodeReady, NodeReady{Name: "n1", Ready: true, Time: t0.Add(time.Hour)}))
	if n := s.Nodes["n1"]; !n.Ready || !n.Transition.Equal(t0) {
		t.Errorf("Transition must only move when Ready changes: %+v", n)
	}

	mustReject(t, s, "node has no name", NewCommand(CmdRegisterNode, Node{}))
	mustReject(t, s, `no node "ghost"`, NewCommand(CmdSetNodeReady, NodeReady{Name: "ghost", Ready: true}))
}

func TestApplyPods(t *testing.T) {
	t.Parallel()
	s := cluster(t)
	mustReject(t, s, "pod ns/a exists", NewCommand(CmdCreatePod, testPod("ns", "a")))
	mustReject(t, s, "no pod ns/zz", NewCommand(CmdBindPod, PodBinding{Key: "ns/zz", NodeName: "n1"}))
	mustReject(t, s, `no node "ghost"`, NewCommand(CmdBindPod, PodBinding{Key: "ns/b", NodeName: "ghost"}))
	mustReject(t, s, "bound to n1 already", NewCommand(CmdBindPod, PodBinding{Key: "ns/a", NodeName: "n2"}))

	mustApply(t, s,
		NewCommand(CmdBindPod, PodBinding{Key: "ns/a", NodeName: "n1"}), // same node: no-op
		NewCommand(CmdBindPod, PodBinding{Key: "ns/b", NodeName: "n2"}),
		NewCommand(CmdSetPodStatus, PodStatusUpdate{Key: "ns/a", Status: PodStatus{Phase: PodRunning, Ready: true, IP: "10.244.0.5",
			Containers: []ContainerStatus{{Name: "c", State: "running", Ready: true}}}}),
		NewCommand(CmdTerminatePod, PodRef{Key: "ns/b"}),
		// Stale reports about pods already gone are not errors.
		NewCommand(CmdSetPodStatus, PodStatusUpdate{Key: "ns/gone", Status: PodStatus{Phase: PodFailed}}),
		NewCommand(CmdTerminatePod, PodRef{Key: "ns/gone"}),
		NewCommand(CmdDeletePod, PodRef{Key: "ns/gone"}),
	)
	a, b := s.Pods.Get("ns/a"), s.Pods.Get("ns/b")
	if a.Status.Phase != PodRunning || a.Status.IP != "10.244.0.5" || len(a.Status.Containers) != 1 {
		t.Errorf("pod a status = %+v", a.Status)
	}
	if b.NodeName != "n2" || !b.Terminating {
		t.Errorf("pod b = %+v", b)
	}
	mustApply(t, s, NewCommand(CmdDeletePod, PodRef{Key: "ns/b"}))
	if s.Pods.Get("ns/b") != nil || s.Pods.Len() != 1 {
		t.Errorf("pods after delete: %v", s.Pods)
	}
}

func TestApplyServiceIPs(t *testing.T) {
	t.Parallel()
	s := cluster(t)
	mustReject(t, s, "ClusterIP 10.96.0.10 is taken by ns/web", NewCommand(CmdSetServiceIP, ServiceIP{Key: "ns/api", IP: "10.96.0.10"}))
	mustApply(t, s,
		NewCommand(CmdSetServiceIP, ServiceIP{Key: "ns/web", IP: "10.96.0.10"}), // again: no-op
		NewCommand(CmdSetServiceIP, ServiceIP{Key: "ns/web", IP: ""}),
		NewCommand(CmdSetServiceIP, ServiceIP{Key: "ns/api", IP: "10.96.0.10"}),
	)
	if want := map[string]string{"ns/api": "10.96.0.10"}; !reflect.DeepEqual(s.ServiceIPs, want) {
		t.Errorf("ServiceIPs = %v, want %v", s.ServiceIPs, want)
	}
}

// TestApplyTokenUses: each join counts, at the time the command carries;
// a use of a token that is used up, expired then, revoked, not a join
// token or unknown is refused and changes nothing.
func TestApplyTokenUses(t *testing.T) {
	t.Parallel()
	s := &State{}
	mustApply(t, s,
		NewCommand(CmdAddToken, auth.Token{ID: "once", Hash: "h", Role: auth.RoleMasterJoin, Uses: 1, Expires: t0.Add(time.Hour)}),
		NewCommand(CmdAddToken, auth.Token{ID: "many", Hash: "h", Role: auth.RoleAgentJoin}),
		NewCommand(CmdAddToken, auth.Token{ID: "admin", Hash: "h", Role: auth.RoleAdmin}),
		NewCommand(CmdAddToken, auth.Token{ID: "gone", Hash: "h", Role: auth.RoleAgentJoin, Revoked: true}),
	)
	mustReject(t, s, "token expired: once", NewCommand(CmdUseToken, TokenUse{ID: "once", Time: t0.Add(time.Hour)}))
	mustApply(t, s, NewCommand(CmdUseToken, TokenUse{ID: "once", Time: t0}))
	mustReject(t, s, "token used up: once", NewCommand(CmdUseToken, TokenUse{ID: "once", Time: t0}))
	for range 3 {
		mustApply(t, s, NewCommand(CmdUseToken, TokenUse{ID: "many", Time: t0}))
	}
	if once, many := s.Tokens["once"], s.Tokens["many"]; once.Used != 1 || many.Used != 3 {
		t.Fatalf("uses counted: once %d, many %d", once.Used, many.Used)
	}
	mustReject(t, s, "token revoked: gone", NewCommand(CmdUseToken, TokenUse{ID: "gone", Time: t0}))
	mustReject(t, s, "not a join token", NewCommand(CmdUseToken, TokenUse{ID: "admin", Time: t0}))
	mustReject(t, s, "no token ghost", NewCommand(CmdUseToken, TokenUse{ID: "ghost", Time: t0}))
	// Two uses of a single-use token in one batch: the batch fails whole.
	mustApply(t, s, NewCommand(CmdAddToken, auth.Token{ID: "twice", Hash: "h", Role: auth.RoleMasterJoin, Uses: 1}))
	mustReject(t, s, "command 1 (UseToken): auth: token used up: twice",
		NewCommand(CmdUseToken, TokenUse{ID: "twice", Time: t0}), NewCommand(CmdUseToken, TokenUse{ID: "twice", Time: t0}))
}

func TestApplyBadCommands(t *testing.T) {
	t.Parallel()
	good := NewCommand(CmdDeletePod, PodRef{Key: "ns/a"})
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{"unknown version", Command{Version: 2, Type: CmdDeletePod, Payload: good.Payload}, "unknown command version 2"},
		{"no version", Command{Type: CmdDeletePod, Payload: good.Payload}, "unknown command version 0"},
		{"unknown type", Command{Version: CommandVersion, Type: "Explode", Payload: json.RawMessage(`{}`)}, `unknown command type "Explode"`},
		{"payload of the wrong shape", Command{Version: CommandVersion, Type: CmdRegisterNode, Payload: json.RawMessage(`{"name":5}`)}, "bad payload"},
		{"payload not an object", Command{Version: CommandVersion, Type: CmdSetPodStatus, Payload: json.RawMessage(`"x"`)}, "bad payload"},
		{"no payload", Command{Version: CommandVersion, Type: CmdBindPod}, "bad payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := cluster(t)
			// The good command comes first: it must be undone too.
			mustReject(t, s, "command 1 ("+string(tc.cmd.Type)+"): "+tc.want, good, tc.cmd)
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
	before := cluster(t)
	mustApply(t, before, NewCommand(CmdAddRevision, Revision{Commit: "c1", Status: RevisionApplied}),
		NewCommand(CmdAddToken, auth.Token{ID: "t1", Hash: "h1", Role: auth.RoleAdmin}), NewCommand(CmdSetMasterAPI, MasterAPI{ID: "m1", URL: "https://m1"}),
		NewCommand(CmdAddToken, auth.Token{ID: "j1", Hash: "h1", Role: auth.RoleAgentJoin}))
	// Spare capacity is where an append into a shared slice would land.
	before.Revisions = slices.Grow(before.Revisions, 4)
	want := encoded(t, before)

	next := *before
	mustApply(t, &next,
		NewCommand(CmdAddRevision, Revision{Commit: "c2", Status: RevisionApplied}),
		NewCommand(CmdRegisterNode, Node{Name: "n1", Address: "10.0.0.9"}),
		NewCommand(CmdRegisterNode, Node{Name: "n3"}),
		NewCommand(CmdSetNodeReady, NodeReady{Name: "n2", Ready: true, Time: t0}),
		NewCommand(CmdCreatePod, testPod("ns", "c")),
		NewCommand(CmdBindPod, PodBinding{Key: "ns/b", NodeName: "n2"}),
		NewCommand(CmdTerminatePod, PodRef{Key: "ns/a"}),
		NewCommand(CmdSetPodStatus, PodStatusUpdate{Key: "ns/a", Status: PodStatus{Phase: "Running"}}),
		NewCommand(CmdDeletePod, PodRef{Key: "ns/b"}),
		NewCommand(CmdSetServiceIP, ServiceIP{Key: "ns/web", IP: ""}),
		NewCommand(CmdSetServiceIP, ServiceIP{Key: "ns/api", IP: "10.96.0.11"}),
		NewCommand(CmdAddToken, auth.Token{ID: "t2", Hash: "h2", Role: auth.RoleAdmin}),
		NewCommand(CmdRevokeToken, TokenRef{ID: "t1"}),
		NewCommand(CmdUseToken, TokenUse{ID: "j1", Time: t0}),
		NewCommand(CmdSetCA, ClusterCA{CertPEM: []byte("cert"), EncryptedKey: []byte("key")}),
		NewCommand(CmdSetMasterAPI, MasterAPI{ID: "m1"}),
	)
	if !bytes.Equal(want, encoded(t, before)) {
		t.Fatalf("applying a batch changed the state it started from")
	}
	if len(next.Revisions) != 2 || next.Revisions[0].Status != RevisionSuperseded || next.Pods.Get("ns/a").Status.Phase != "Running" ||
		!next.Nodes["n2"].Ready || !next.Tokens["t1"].Revoked || next.Tokens["j1"].Used != 1 || next.MasterAPIs["m1"] != "" || next.ServiceIPs["ns/api"] == "" {
		t.Fatalf("the batch did not apply as expected: %+v", next)
	}
}
