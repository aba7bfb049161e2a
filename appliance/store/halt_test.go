package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/state"
)

// A member that meets a command it does not know (a newer leader's) stops
// applying there and says so, instead of skipping it and serving a state
// the members that applied it do not have; an ignorable one is skipped.
func TestUnknownCommandHaltsTheMember(t *testing.T) {
	s := openLeader(t, t.TempDir(), true)
	ctx := context.Background()
	node := func(name string) state.Command {
		return state.NewCommand(state.CmdRegisterNode, state.Node{Name: name})
	}

	skip := state.Command{Version: state.CommandVersion, Type: "FromTheFuture", Payload: json.RawMessage(`{}`), Ignorable: true}
	if _, err := s.Propose(ctx, []state.Command{skip, node("a")}); err != nil {
		t.Fatalf("a batch with an ignorable unknown command: %v", err)
	}
	select {
	case <-s.Halted():
		t.Fatal("halted on an ignorable command")
	default:
	}

	future := state.Command{Version: state.CommandVersion, Type: "FromTheFuture", Payload: json.RawMessage(`{}`)}
	if _, err := s.Propose(ctx, []state.Command{node("b"), future}); err == nil {
		t.Fatal("a batch with an unknown command applied")
	}
	select {
	case <-s.Halted():
	default:
		t.Fatal("not halted after an unknown command")
	}
	if err := s.HaltError(); !errors.Is(err, state.ErrUnknownCommand) || !strings.Contains(err.Error(), `"FromTheFuture"`) {
		t.Fatalf("halt error %v", err)
	}
	// Nothing after it applies: the state stays where the log was good.
	newer := state.Command{Version: state.CommandVersion + 1, Type: state.CmdRegisterNode, Payload: json.RawMessage(`{"name":"c"}`)}
	for _, batch := range [][]state.Command{{node("c")}, {newer}} {
		if _, err := s.Propose(ctx, batch); err == nil {
			t.Fatalf("batch %s applied after the halt", batch[0].Type)
		}
	}
	if st := s.State(); len(st.Nodes) != 1 || st.Nodes["a"] == nil {
		t.Fatalf("nodes after the halt: %v, want only a", st.Nodes)
	}
}
