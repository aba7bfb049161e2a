package main

import (
	"context"
	"strings"
	"testing"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/appliance/state"
)

// `berth delete node` removes a node through a real master, the one
// named ../../etc that once could not be removed too.
func TestDeleteNode(t *testing.T) {
	m, conf := startTestMaster(t, appliance.Config{})
	for _, name := range []string{"n1", "../../etc"} {
		if _, err := m.Store.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdRegisterNode, state.Node{Name: name})}); err != nil {
			t.Fatal(err)
		}
	}
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
