package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// On a node whose disk fills up, a running pod whose ConfigMap volume can
// no longer be refreshed keeps running as it was (before, it turned
// ContainerCreating and left its Services), the node reports DiskPressure
// (so nothing new is placed there), and the refresh lands once there is
// room again. The disk is a real tmpfs of 256 KiB.
func TestDiskPressure(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "agent")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", data, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mounting a small tmpfs (the test runs as root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(data, unix.MNT_DETACH) })

	master := newMaster(t)
	p := &state.Pod{Namespace: "default", Name: "p1", Spec: objects.PodSpec{
		Volumes:    []objects.Volume{{Name: "cfg", ConfigMap: &objects.ConfigMapVolumeSource{Name: "settings"}}},
		Containers: []objects.Container{{Name: "c", Image: "i", VolumeMounts: []objects.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}}}}}}
	a := agentWithPod(t, master, data, &flakyRuntime{}, p)
	ctx := context.Background()
	settings := func(v string) *api.NodeAssignment {
		cm := &objects.ConfigMap{Data: map[string]string{"v": v}}
		return &api.NodeAssignment{ConfigMaps: map[string]*objects.ConfigMap{"default/settings": cm}}
	}
	w := newPodWorker(ctx, a, p)
	w.update(p, settings("one"))
	w.sync(ctx)
	snapshot := func() (*state.Pod, *state.Node) {
		s := master.st.State()
		return s.Pods.Get(p.Key()), s.Nodes["n1"]
	}
	if err := a.beat(ctx); err != nil {
		t.Fatal(err)
	}
	if pod, node := snapshot(); !pod.Status.Ready || node.DiskPressure {
		t.Fatalf("with room: pod ready %v (%s %s), node disk pressure %v", pod.Status.Ready, pod.Status.Reason, pod.Status.Message, node.DiskPressure)
	}

	// Fill the disk.
	filler := filepath.Join(data, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	big := string(make([]byte, 64<<10))
	w.update(p, settings(big))
	w.sync(ctx)
	if err := a.beat(ctx); err != nil {
		t.Fatal(err)
	}
	pod, node := snapshot()
	if !pod.Status.Ready || pod.Status.Phase != state.PodRunning {
		t.Errorf("disk full: the running pod's status changed to %s ready=%v %s %q", pod.Status.Phase, pod.Status.Ready, pod.Status.Reason, pod.Status.Message)
	}
	if !node.DiskPressure || !node.Ready {
		t.Errorf("disk full: node disk pressure %v, ready %v; want pressure on a ready node", node.DiskPressure, node.Ready)
	}
	file := filepath.Join(podDir(data, p), "volumes", "cfg", "v")
	if b, err := os.ReadFile(file); err != nil || string(b) != "one" {
		t.Errorf("disk full: the pod's file holds %q (%v), want its last good content", b, err)
	}

	// Room again: the refresh lands, and the pressure ends once the hold
	// after the failed write has passed.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	w.sync(ctx)
	if b, err := os.ReadFile(file); err != nil || string(b) != big {
		t.Errorf("room again: the refresh did not land (%d bytes, %v)", len(b), err)
	}
	if pressure, _ := a.disk(time.Now()); !pressure {
		t.Error("the pressure ended at once after a failed write")
	}
	a.noSpaceUntil.Store(0)
	if err := a.beat(ctx); err != nil {
		t.Fatal(err)
	}
	if _, node := snapshot(); node.DiskPressure {
		t.Error("room again: the node still reports DiskPressure")
	}
}
