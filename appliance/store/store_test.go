package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

func testConfig(dir string, bootstrap bool) Config {
	return Config{DataDir: dir, NodeID: "m1", BindAddr: "127.0.0.1:0", Bootstrap: bootstrap, Logger: slog.New(slog.DiscardHandler)}
}

// openLeader opens a store on dir and waits until it leads.
func openLeader(t testing.TB, dir string, bootstrap bool) *Store {
	t.Helper()
	s, err := Open(testConfig(dir, bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	deadline := time.After(10 * time.Second)
	for {
		leading, changed := s.Leadership()
		if leading {
			return s
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("no leadership after 10s")
		}
	}
}

func propose(t testing.TB, s *Store, batch ...state.Command) uint64 {
	t.Helper()
	index, err := s.Propose(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	return index
}

// populate proposes one batch per command kind and returns the last index.
func populate(t testing.TB, s *Store, prefix string) uint64 {
	t.Helper()
	propose(t, s, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: prefix + "c1", Status: state.RevisionApplied, Time: statetest.T0}))
	propose(t, s, state.NewCommand(state.CmdRegisterNode, state.Node{Name: prefix + "n1", Labels: map[string]string{"zone": "a"}}),
		state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: prefix + "n1", Ready: true, Time: statetest.T0}))
	propose(t, s, state.NewCommand(state.CmdCreatePod, statetest.Pod(prefix+"ns", "a")), state.NewCommand(state.CmdCreatePod, statetest.Pod(prefix+"ns", "b")))
	propose(t, s, state.NewCommand(state.CmdBindPod, state.PodBinding{Key: prefix + "ns/a", NodeName: prefix + "n1"}))
	propose(t, s, state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: prefix + "ns/a", Status: state.PodStatus{Phase: state.PodRunning, Ready: true, ReadySince: statetest.T0}}))
	return propose(t, s, state.NewCommand(state.CmdDeletePod, state.PodRef{Key: prefix + "ns/b"}), state.NewCommand(state.CmdSetServiceIP, state.ServiceIP{Key: prefix + "ns/web", IP: "10.96.0." + fmt.Sprint(len(prefix)+1)}))
}

func TestStoreProposeAndRead(t *testing.T) {
	t.Parallel()
	s := openLeader(t, t.TempDir(), true)
	index := populate(t, s, "")

	st := s.State()
	if st.Index != index || st.Current().Commit != "c1" || st.Nodes["n1"].PodCIDR != "10.244.0.0/24" ||
		st.Pods.Get("ns/a").NodeName != "n1" || st.Pods.Get("ns/b") != nil || st.ServiceIPs["ns/web"] != "10.96.0.1" {
		t.Fatalf("state after proposals: %+v", st)
	}
	before := statetest.Encoded(t, s.State())
	_, err := s.Propose(context.Background(), []state.Command{
		state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/a"}),
		state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "ns/a", NodeName: "ghost"}),
	})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "command 1 (BindPod)") {
		t.Fatalf("Propose of a bad batch = %v", err)
	}
	if got := s.State(); !bytes.Equal(statetest.Encoded(t, got), before) {
		t.Fatalf("a rejected batch changed the state (Index %d)", got.Index)
	}
	if _, err := s.Propose(context.Background(), nil); err == nil {
		t.Fatal("an empty batch was proposed")
	}
}

// TestStoreSingleUseTokenRace: many masters' worth of joins propose the
// use of one single-use token at once; Raft orders them and the FSM lets
// exactly one commit, the others come back as ErrRejected.
func TestStoreSingleUseTokenRace(t *testing.T) {
	t.Parallel()
	s := openLeader(t, t.TempDir(), true)
	propose(t, s, state.NewCommand(state.CmdAddToken, auth.Token{ID: "once", Hash: "h", Role: auth.RoleMasterJoin, Uses: 1}))
	const joins = 16
	var (
		wg        sync.WaitGroup
		won, lost atomic.Int32
	)
	for range joins {
		wg.Go(func() {
			_, err := s.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdUseToken, state.TokenUse{ID: "once", Time: time.Now()})})
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, ErrRejected) && errors.Is(err, auth.ErrUsedUp):
				lost.Add(1)
			default:
				t.Errorf("Propose: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || lost.Load() != joins-1 || s.State().Tokens["once"].Used != 1 {
		t.Fatalf("%d joins won, %d lost, %d uses counted; want 1, %d, 1", won.Load(), lost.Load(), s.State().Tokens["once"].Used, joins-1)
	}
}

func TestStoreWait(t *testing.T) {
	t.Parallel()
	s := openLeader(t, t.TempDir(), true)
	index := propose(t, s, state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1"}))

	if got, err := s.Wait(context.Background(), index-1); err != nil || got != index {
		t.Fatalf("Wait for a past index = %d, %v", got, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got, err := s.Wait(ctx, index); !errors.Is(err, context.DeadlineExceeded) || got != index {
		t.Fatalf("Wait with nothing new = %d, %v", got, err)
	}

	woke := make(chan uint64)
	go func() {
		got, err := s.Wait(context.Background(), index)
		if err != nil {
			t.Error(err)
		}
		woke <- got
	}()
	next := propose(t, s, state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n1", Ready: true}))
	select {
	case got := <-woke:
		if got != next {
			t.Fatalf("Wait returned %d, want %d", got, next)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake on a new index")
	}

	go func() { time.Sleep(20 * time.Millisecond); s.Close() }()
	if _, err := s.Wait(context.Background(), next); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait on close = %v", err)
	}
	if leading, _ := s.Leadership(); leading {
		t.Fatal("a closed store leads")
	}
	if _, err := s.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "x/y"})}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Propose after Close = %v", err)
	}
}

func TestStoreNotLeader(t *testing.T) {
	t.Parallel()
	// Without Bootstrap a new master waits to be added to a cluster.
	s, err := Open(testConfig(t.TempDir(), false))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1"})})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Propose on a follower = %v, want ErrNotLeader", err)
	}
	if s.IsLeader() {
		t.Fatal("IsLeader on a follower")
	}
}

func TestStoreRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openLeader(t, dir, true)
	populate(t, s, "")
	want := s.State()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// From the log alone. Bootstrap is set again and must be ignored.
	s = openLeader(t, dir, true)
	if got := s.State(); !statetest.Same(got, want) {
		t.Fatalf("after restart:\n got %+v\nwant %+v", got, want)
	}

	// From a snapshot plus the entries after it.
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	populate(t, s, "x")
	want = s.State()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if snaps, _ := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*", "state.bin")); len(snaps) != 1 {
		t.Fatalf("snapshots on disk: %v", snaps)
	}
	s = openLeader(t, dir, false)
	if got := s.State(); !statetest.Same(got, want) {
		t.Fatalf("after restart from a snapshot:\n got %+v\nwant %+v", got, want)
	}
}

// snapshotted leaves dir with a snapshot and a few entries after it, and
// returns the state and the snapshot's directory.
func snapshotted(t *testing.T) (dir string, want *state.State, snapDir string) {
	t.Helper()
	dir = t.TempDir()
	s := openLeader(t, dir, true)
	populate(t, s, "")
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	populate(t, s, "x")
	want = s.State()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots: %v", snaps)
	}
	return dir, want, snaps[0]
}

func TestStoreCorruptSnapshot(t *testing.T) {
	t.Parallel()
	dir, _, snap := snapshotted(t)
	path := filepath.Join(snap, "state.bin")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Raft would skip the snapshot and replay the log from its start;
	// Open must refuse instead and name the file.
	_, err = Open(testConfig(dir, true))
	if err == nil || !strings.Contains(err.Error(), snap) || !strings.Contains(err.Error(), "CRC mismatch") {
		t.Fatalf("Open with a corrupt snapshot = %v", err)
	}
}

func TestStoreUnknownSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A snapshot with a valid checksum that this master cannot read, as a
	// newer master would write it.
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, "raft"), 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, 5, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(sink, `{"format":"berth-state","version":9}`)
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(testConfig(dir, true))
	if err == nil || !strings.Contains(err.Error(), "snapshot format version 9 is unknown") {
		t.Fatalf("Open with a newer snapshot = %v", err)
	}
}

// compact removes the log entries the snapshot covers, as Raft does once
// more than TrailingLogs entries follow it.
func compact(t *testing.T, dir string) {
	t.Helper()
	db, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft", "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, "raft"), 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("snapshots: %v, %v", list, err)
	}
	first, _ := db.FirstIndex()
	if err := db.DeleteRange(first, list[0].Index); err != nil {
		t.Fatal(err)
	}
}

func TestStoreCompactedLog(t *testing.T) {
	t.Parallel()
	dir, want, _ := snapshotted(t)
	compact(t, dir)
	s := openLeader(t, dir, false)
	if got := s.State(); !statetest.Same(got, want) {
		t.Fatalf("after restart from a snapshot and a compacted log:\n got %+v\nwant %+v", got, want)
	}
}

func TestStoreUnreadableSnapshotMeta(t *testing.T) {
	t.Parallel()
	dir, _, snap := snapshotted(t)
	compact(t, dir)
	if err := os.WriteFile(filepath.Join(snap, "meta.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Raft's snapshot store skips a snapshot whose metadata it cannot
	// read; with the log compacted, starting would lose its entries.
	_, err := Open(testConfig(dir, true))
	if err == nil || !strings.Contains(err.Error(), "no readable snapshot reaches index") {
		t.Fatalf("Open with unreadable snapshot metadata = %v", err)
	}
}

func TestStoreCorruptLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openLeader(t, dir, true)
	populate(t, s, "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "raft", "raft.db")
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Both of bolt's meta pages.
	if _, err := f.WriteAt(make([]byte, 2*os.Getpagesize()), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Open(testConfig(dir, true))
	if err == nil || !strings.Contains(err.Error(), "opening the raft log "+path) {
		t.Fatalf("Open with a corrupt raft.db = %v", err)
	}
}

func TestStoreLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(testConfig(dir, true))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(testConfig(dir, true)); err == nil || !strings.Contains(err.Error(), "is locked: another berth master") {
		t.Fatalf("a second Open on one data dir = %v", err)
	}
}

// BenchmarkPropose measures committed proposals per second, each a batch
// of one SetPodStatus command with a 256-byte payload, fsynced by bolt.
func BenchmarkPropose(b *testing.B) {
	s := openLeader(b, b.TempDir(), true)
	propose(b, s, state.NewCommand(state.CmdCreatePod, statetest.Pod("ns", "a")))
	status := state.PodStatus{Phase: state.PodRunning, Ready: true, Reason: "ContainerCreating"}
	for len(state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "ns/a", Status: status}).Payload) < 256 {
		status.Message += "x"
	}
	batch := []state.Command{state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: "ns/a", Status: status})}

	for _, proposers := range []int{1, 64} {
		b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range proposers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Propose(context.Background(), batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proposals/s")
		})
	}
}
