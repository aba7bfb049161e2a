package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/appliance/state"
)

// `berth delete node` removes a node through a real master, the one
// named ../../etc that once could not be removed too.
func TestDeleteNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raft := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	m, err := appliance.Start(context.Background(), appliance.Config{Name: "m0", DataDir: data, Listen: "127.0.0.1:0", RaftListen: raft,
		Bootstrap: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, name := range []string{"n1", "../../etc"} {
		if _, err := m.Store.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdRegisterNode, state.Node{Name: name})}); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(data, "admin.conf")
	for _, name := range []string{"n1", "../../etc"} {
		out, code := run(t, "delete", "node", name, "--config", conf)
		if code != 0 || !strings.Contains(out, "deleted") {
			t.Fatalf("delete node %s: exit %d, %s", name, code, out)
		}
	}
	if n := len(m.Store.State().Nodes); n != 0 {
		t.Fatalf("%d nodes left", n)
	}
	if _, code := run(t, "delete", "node", "n1", "--config", conf); code != 1 {
		t.Errorf("deleting a node that is gone: exit %d, want 1", code)
	}
}
