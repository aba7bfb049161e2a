package reconcile

import (
	"fmt"
	"testing"

	"github.com/berth/berth/schemas/objects"
)

// TestLargeDeploymentNamesAreUnique: one pass plans every pod of a 3,000
// replica Deployment under a distinct name, and the FSM accepts the batch.
func TestLargeDeploymentNamesAreUnique(t *testing.T) {
	h := newHarness(t)
	h.commit(deployment("web", 3000, "v1"))
	cmds := Deployments(h.s, h.desired(), h.now)
	if len(cmds) != 3000 {
		t.Fatalf("planned %d commands, want 3000", len(cmds))
	}
	h.apply(cmds...) // fails the test if two names collide
	if h.s.Pods.Len() != 3000 {
		t.Fatalf("%d pods, want 3000", h.s.Pods.Len())
	}
}

// TestManyDeploymentsAllCreated: 100 Deployments of 500 replicas get all
// 50,000 pods in one pass.
func TestManyDeploymentsAllCreated(t *testing.T) {
	h := newHarness(t)
	var objs []objects.Object
	for i := range 100 {
		objs = append(objs, deployment(fmt.Sprintf("d%02d", i), 500, "v1"))
	}
	h.commit(objs...)
	h.apply(Deployments(h.s, h.desired(), h.now)...)
	if h.s.Pods.Len() != 50000 {
		t.Fatalf("%d pods, want 50000", h.s.Pods.Len())
	}
}
