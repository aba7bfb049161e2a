package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

// applyLog feeds one log entry to f as raft would and returns its response.
func applyLog(f *fsm, index uint64, data []byte) error {
	resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
	if resp == nil {
		return nil
	}
	return resp.(error)
}

func encodeBatch(t testing.TB, batch ...state.Command) []byte {
	b, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clusterFSM is an FSM holding cluster's state at index 10.
func clusterFSM(t testing.TB) *fsm {
	f := newFSM()
	s := statetest.Cluster(t)
	s.Index = 10
	f.publish(s)
	return f
}

func TestFSMApply(t *testing.T) {
	t.Parallel()
	f := clusterFSM(t)
	before := f.cur.Load()
	kept := statetest.Encoded(t, before.state)

	if err := applyLog(f, 11, encodeBatch(t, state.NewCommand(state.CmdCreatePod, statetest.Pod("ns", "a")))); err == nil || !strings.Contains(err.Error(), "pod ns/a exists") {
		t.Fatalf("Apply = %v, want the FSM's error as the response", err)
	}
	if f.cur.Load() != before {
		t.Fatal("a rejected batch published a new state")
	}

	if err := applyLog(f, 12, encodeBatch(t, state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/a"}))); err != nil {
		t.Fatal(err)
	}
	now := f.cur.Load().state
	if now.Index != 12 || now.Pods.Get("ns/a") != nil {
		t.Fatalf("after apply: Index %d, pod %v", now.Index, now.Pods.Get("ns/a"))
	}
	select {
	case <-before.next:
	default:
		t.Fatal("an apply did not wake the waiters of the previous state")
	}
	if !bytes.Equal(statetest.Encoded(t, before.state), kept) {
		t.Fatal("Apply changed a published state")
	}
}

func TestSnapshotIsStateJSON(t *testing.T) {
	t.Parallel()
	s := statetest.Filled()
	var buf bytes.Buffer
	if err := state.WriteSnapshot(&buf, s); err != nil {
		t.Fatal(err)
	}
	header, body, _ := bytes.Cut(buf.Bytes(), []byte("\n"))
	if string(header) != `{"format":"berth-state","version":1}` {
		t.Errorf("header = %s", header)
	}
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, append(want, '\n')) {
		t.Fatalf("the snapshot body differs from json.Marshal(State): a field is missing\n got %s\nwant %s", body, want)
	}

	got, err := state.ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var viaJSON state.State
	if err := json.Unmarshal(want, &viaJSON); err != nil {
		t.Fatal(err)
	}
	if !statetest.Same(got, &viaJSON) {
		t.Fatal("reading a snapshot differs from json.Unmarshal of the state")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	f := clusterFSM(t)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("Persist: %v (closed %v)", err, sink.closed)
	}
	g := newFSM()
	if err := g.Restore(io.NopCloser(&sink.buf)); err != nil {
		t.Fatal(err)
	}
	if !statetest.Same(f.cur.Load().state, g.cur.Load().state) {
		t.Fatal("restored state differs")
	}
}

func TestRestoreRejects(t *testing.T) {
	t.Parallel()
	var good bytes.Buffer
	if err := state.WriteSnapshot(&good, statetest.Cluster(t)); err != nil {
		t.Fatal(err)
	}
	header, body, _ := strings.Cut(good.String(), "\n")
	header += "\n"
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "snapshot header: EOF"},
		{"not JSON", "\x00\x01garbage", "snapshot header"},
		{"other format", `{"format":"etcd","version":1}` + "\n" + body, `not a berth state snapshot (format "etcd")`},
		{"newer version", `{"format":"berth-state","version":2}` + "\n" + body, "snapshot format version 2 is unknown"},
		{"truncated", header + body[:len(body)/2], "snapshot"},
		{"header only", header, "snapshot: EOF"},
		{"not an object", header + "[]", "found [ where { belongs"},
		{"unknown field", header + `{"index":1,"extra":true}`, `unknown field "extra"`},
		{"wrong type", header + `{"index":"one"}`, "snapshot state"},
		{"null pod", header + `{"pods":{"ns/a":null}}`, `pod "ns/a" is null`},
		{"trailing data", good.String() + "{}", "data after the state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := clusterFSM(t)
			before := f.cur.Load()
			err := f.Restore(io.NopCloser(strings.NewReader(tc.data)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tc.want)
			}
			if f.cur.Load() != before {
				t.Fatal("a failed restore replaced the state")
			}
		})
	}
}

type memSink struct {
	buf    bytes.Buffer
	closed bool
}

func (s *memSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *memSink) Close() error                { s.closed = true; return nil }
func (s *memSink) ID() string                  { return "mem" }
func (s *memSink) Cancel() error               { return errors.New("cancelled") }

// FuzzFSMApply feeds arbitrary log entries to the FSM: no panic, and a
// rejected entry leaves the state exactly as it was.
func FuzzFSMApply(f *testing.F) {
	for _, batch := range [][]state.Command{
		{state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c9", Status: state.RevisionApplied, Objects: []state.Object{{Digest: "d", JSON: json.RawMessage(`{}`)}}})},
		{state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n9"}), state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n9", Ready: true})},
		{state.NewCommand(state.CmdCreatePod, statetest.Pod("ns", "c")), state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/c", NodeName: "n2"})},
		{state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "ns/a", Status: state.PodStatus{Phase: state.PodRunning}}), state.NewCommand(state.CmdTerminatePod, state.PodRef{Key: "ns/a"})},
		{state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/a"}), state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/web", IP: ""})},
		{state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: "ns/api", IP: "10.96.0.10"})},
		{state.NewCommand(state.CmdAddToken, auth.Token{ID: "j9", Hash: "h", Role: auth.RoleMasterJoin, Uses: 1}), state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "j9", Time: statetest.T0})},
		{state.NewCommand(state.CmdRemoveNode, state.NodeRef{Name: "n1"})},
		{{Version: 2, Type: state.CmdDeletePod, Payload: json.RawMessage(`{}`)}},
	} {
		f.Add(encodeBatch(f, batch...))
	}
	for _, s := range []string{"", "null", "[]", "{}", "[{}]", `[{"v":1,"type":"BindPod","payload":null}]`, "[1]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fm := clusterFSM(t)
		before := fm.cur.Load()
		kept := statetest.Encoded(t, before.state)
		err := applyLog(fm, 11, data)
		if !bytes.Equal(statetest.Encoded(t, before.state), kept) {
			t.Fatal("Apply changed a published state")
		}
		after := fm.cur.Load()
		if err != nil && after != before {
			t.Fatalf("rejected entry (%v) published a state", err)
		}
		if err == nil && after.state.Index != 11 {
			t.Fatalf("applied entry left Index at %d", after.state.Index)
		}
	})
}
