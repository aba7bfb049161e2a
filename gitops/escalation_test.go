package gitops

import (
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/store"
)

// fakeToken stands for DATA/master/join-master.token.
const fakeToken = "bt1.9d4e2f7a0c1b3e5d7f9a2c4e6b8d0f1a3c5e7b9d"

// The first step of issue 10's escalation: a pushed berth.yaml that is a
// symlink to the master's join token. Through the real syncer and a real
// Raft store, the revision is rejected at berth.yaml, and nothing stored
// (what `berth get revisions` serves to a read-only token) holds the token.
func TestBerthYAMLLinkToTokenRejected(t *testing.T) {
	data := t.TempDir()
	token := filepath.Join(data, "master", "join-master.token")
	if err := os.MkdirAll(filepath.Dir(token), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte(fakeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	up := newUpstream(t, "main")
	up.copyExample("")
	c1 := up.commit("hello")
	if err := os.Symlink(token, filepath.Join(up.dir, "berth.yaml")); err != nil {
		t.Fatal(err)
	}
	c2 := up.commit("berth.yaml, as a link")
	src, err := NewSource(up.dir, filepath.Join(t.TempDir(), "clone"), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSyncer(src, st, WithScratchDir(t.TempDir()))
	if _, err := src.Fetch(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Revision(c1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Propose(ctxT(t), []state.Command{state.NewCommand(state.CmdAddRevision, rev)}); err != nil {
		t.Fatal(err)
	}
	if err := s.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	revs := st.State().Revisions
	if len(revs) != 2 {
		t.Fatalf("revisions %+v", summary(st.State()))
	}
	r := revs[1]
	if r.Commit != c2 || r.Status != state.RevisionRejected || len(r.Diagnostics) != 1 || r.Diagnostics[0].File != "berth.yaml" ||
		!strings.HasPrefix(r.Diagnostics[0].Message, "symlink to ") || st.State().Current().Commit != c1 {
		t.Fatalf("revision %s %s %v", short(r.Commit), r.Status, r.Diagnostics)
	}
	b, _ := json.Marshal(st.State().Revisions)
	if strings.Contains(string(b), fakeToken[:8]) {
		t.Fatalf("the store holds the token: %s", b)
	}
	t.Log(r.Diagnostics[0])
}

// openStore is a real one-master Raft store, once it leads.
func openStore(t *testing.T) *store.Store {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	st, err := store.Open(store.Config{DataDir: t.TempDir(), NodeID: "m0", BindAddr: addr, Bootstrap: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	waitFor(t, st.IsLeader)
	return st
}
