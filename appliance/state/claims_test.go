package state

import (
	"bytes"
	"strings"
	"testing"
)

// A claim binds once and for good, is released for good, and is forgotten
// only once released; claims and free space survive a snapshot.
func TestClaimLifecycle(t *testing.T) {
	s := New()
	claim := Claim{Namespace: "ns", Name: "data", Bytes: 1 << 20, AccessModes: []string{"ReadWriteOnce"}}
	must := func(cmds ...Command) {
		t.Helper()
		if err := Apply(s, cmds); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(want string, cmds ...Command) {
		t.Helper()
		if err := Apply(s, cmds); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error with %q, got %v", want, err)
		}
	}
	must(NewCommand(CmdRegisterNode, Node{Name: "n1"}), NewCommand(CmdRegisterNode, Node{Name: "n2"}),
		NewCommand(CmdSetNodeStorage, NodeStorage{Name: "n1", FreeBytes: 5 << 30}), NewCommand(CmdPutClaim, claim))
	refused("no node", NewCommand(CmdPutClaim, Claim{Namespace: "ns", Name: "data", NodeName: "n9"}))
	refused("not released", NewCommand(CmdDeleteClaim, ClaimRef{Key: "ns/data"}))
	bound := claim
	bound.NodeName = "n1"
	must(NewCommand(CmdPutClaim, bound))
	refused("bound to n1 already", NewCommand(CmdPutClaim, Claim{Namespace: "ns", Name: "data", NodeName: "n2"}))
	must(NewCommand(CmdPutClaim, claim)) // a changed spec keeps the binding
	if c := s.Claims["ns/data"]; c.NodeName != "n1" {
		t.Errorf("binding lost: %+v", c)
	}

	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, s); err != nil {
		t.Fatal(err)
	}
	r, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Claims["ns/data"]; c == nil || c.NodeName != "n1" || r.Nodes["n1"].FreeBytes != 5<<30 {
		t.Errorf("after a snapshot: %+v %+v", c, r.Nodes["n1"])
	}

	released := bound
	released.Released = true
	must(NewCommand(CmdPutClaim, released))
	refused("being deleted", NewCommand(CmdPutClaim, bound))
	must(NewCommand(CmdDeleteClaim, ClaimRef{Key: "ns/data"}), NewCommand(CmdDeleteClaim, ClaimRef{Key: "ns/data"}))
	if len(s.Claims) != 0 {
		t.Errorf("claims left: %v", s.Claims)
	}
	refused("no claim", NewCommand(CmdPutClaim, released))
}
