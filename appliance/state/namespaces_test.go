package state_test

import (
	"testing"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
	"github.com/berth/berth/schemas/objects"
)

func obj(kind, ns, name string) state.Object {
	return state.Object{ID: objects.ObjectID{Kind: kind, Namespace: ns, Name: name}, Digest: kind + ns + name, JSON: []byte(`{}`)}
}

func applied(commit string, objs ...state.Object) state.Command {
	return state.NewCommand(state.CmdAddRevision, state.Revision{Commit: commit, Status: state.RevisionApplied, Objects: objs})
}

// A Namespace that leaves the repository keeps its Services, ConfigMaps
// and Secrets in Terminating until its last pod is gone; declared again,
// it is taken back at once; a rejected revision changes nothing.
func TestNamespaceTermination(t *testing.T) {
	s := statetest.Cluster(t) // pods ns/a and ns/b
	nsObjs := []state.Object{obj("Namespace", "", "ns"), obj("Deployment", "ns", "web"), obj("Service", "ns", "web"),
		obj("ConfigMap", "ns", "cfg"), obj("Secret", "ns", "pw"), obj("Namespace", "", "other"), obj("Service", "other", "x")}
	statetest.MustApply(t, s, applied("c0", obj("Namespace", "", "default"), obj("ConfigMap", "default", "c")))
	statetest.MustApply(t, s, applied("c1", nsObjs...)) // default's Namespace object left out: it stays
	statetest.MustApply(t, s, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "bad", Status: state.RevisionRejected}))
	if len(s.Terminating) != 0 {
		t.Fatalf("terminating after a rejected revision: %v", s.Terminating)
	}
	statetest.MustApply(t, s, applied("c2", obj("Namespace", "", "other"), obj("Service", "other", "x")))
	if got := s.Terminating["ns"]; len(got) != 3 || got[0].ID.Kind != "Service" || got[1].ID.Kind != "ConfigMap" || got[2].ID.Kind != "Secret" || len(s.Terminating) != 1 {
		t.Fatalf("terminating = %v", s.Terminating)
	}
	statetest.MustReject(t, s, "namespace ns still has pod a", state.NewCommand(state.CmdForgetNamespace, state.NamespaceRef{Name: "ns"}))
	// Declared again: its objects are the revision's once more.
	back := *s // Apply leaves what s points to as it was
	statetest.MustApply(t, &back, applied("c3", nsObjs...))
	if len(back.Terminating) != 0 {
		t.Fatalf("terminating after the namespace came back: %v", back.Terminating)
	}
	statetest.MustApply(t, s,
		state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/a"}),
		state.NewCommand(state.CmdDeletePod, state.PodRef{Key: "ns/b"}),
		state.NewCommand(state.CmdForgetNamespace, state.NamespaceRef{Name: "ns"}),
		state.NewCommand(state.CmdForgetNamespace, state.NamespaceRef{Name: "ns"}), // again: no-op
	)
	if len(s.Terminating) != 0 {
		t.Fatalf("terminating after the last pod: %v", s.Terminating)
	}
}
