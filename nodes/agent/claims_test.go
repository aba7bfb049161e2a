package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// TestClaimSurvivesPodAndIsReleased: a claim's directory outlives the pod
// that wrote it and is the next pod's; a claim not bound here is not
// mounted; once released, the agent deletes the data and the masters
// forget the claim.
func TestClaimSurvivesPodAndIsReleased(t *testing.T) {
	master := newMaster(t)
	root := t.TempDir()
	a, err := New(Config{Node: state.Node{Name: "n1"}, Master: master, DataDir: root,
		NewRuntime: func(context.Context, state.Node) (Runtime, error) { return nil, errors.New("not needed") },
		Logger:     slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := master.RegisterNode(ctx, state.Node{Name: "n1"}); err != nil {
		t.Fatal(err)
	}
	claim := state.Claim{Namespace: "db", Name: "data-redis-0", Bytes: 1 << 20, AccessModes: []string{"ReadWriteOnce"}, NodeName: "n1"}
	if err := master.propose(state.NewCommand(state.CmdPutClaim, claim)); err != nil {
		t.Fatal(err)
	}
	pod := func(name string) *state.Pod {
		return &state.Pod{Namespace: "db", Name: name, Spec: objects.PodSpec{
			Volumes:    []objects.Volume{{Name: "data", PersistentVolumeClaim: &objects.ClaimVolumeSource{ClaimName: "data-redis-0"}}},
			Containers: []objects.Container{{Name: "c", VolumeMounts: []objects.VolumeMount{{Name: "data", MountPath: "/data"}}}}}}
	}
	asg := &api.NodeAssignment{Claims: []state.Claim{claim}}
	mounts, err := prepareVolumes(root, asg, pod("redis-0"))
	if err != nil {
		t.Fatal(err)
	}
	dir := mounts["c"][0].HostPath
	if err := os.WriteFile(filepath.Join(dir, "dump.rdb"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The pod is replaced: same claim, same data.
	mounts, err = prepareVolumes(root, asg, pod("redis-0"))
	if err != nil || mounts["c"][0].HostPath != dir {
		t.Fatalf("the next pod's mounts %+v, %v", mounts, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "dump.rdb")); err != nil || string(b) != "x" {
		t.Fatalf("the data after a pod replacement: %q %v", b, err)
	}
	var ce *configError
	if _, err := prepareVolumes(root, &api.NodeAssignment{}, pod("redis-0")); !errors.As(err, &ce) {
		t.Errorf("a claim not bound here: %v", err)
	}

	claim.Released = true
	if err := master.propose(state.NewCommand(state.CmdPutClaim, claim)); err != nil {
		t.Fatal(err)
	}
	got, _, err := master.NodePods(ctx, "n1", nil)
	if err != nil || len(got.Claims) != 1 || !got.Claims[0].Released {
		t.Fatalf("the assignment's claims: %+v %v", got.Claims, err)
	}
	a.release(ctx, &got)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the released claim's data: %v", err)
	}
	if c := master.st.State().Claims; len(c) != 0 {
		t.Errorf("claims the masters still hold: %v", c)
	}
}
