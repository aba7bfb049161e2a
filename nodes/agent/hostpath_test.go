package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// hostPath volumes: the types are checked and the ...OrCreate ones made,
// as the kubelet does; nothing that holds or lies in the agent's data
// directory is mounted, whether named or reached through a link.
func TestHostPathVolumes(t *testing.T) {
	host := t.TempDir()
	root := filepath.Join(host, "data")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(host, "link")); err != nil {
		t.Fatal(err)
	}
	prepare := func(path, typ string) (map[string][]Mount, error) {
		p := &state.Pod{Namespace: "ns", Name: "p", Spec: objects.PodSpec{
			Volumes:    []objects.Volume{{Name: "h", HostPath: &objects.HostPathVolumeSource{Path: path, Type: typ}}},
			Containers: []objects.Container{{Name: "c", VolumeMounts: []objects.VolumeMount{{Name: "h", MountPath: "/h", ReadOnly: true}}}},
		}}
		return prepareVolumes(root, &api.NodeAssignment{}, p)
	}
	mounts, err := prepare(filepath.Join(host, "new", "dir"), "DirectoryOrCreate")
	if err != nil || mounts["c"][0].HostPath != filepath.Join(host, "new", "dir") || !mounts["c"][0].ReadOnly {
		t.Fatalf("DirectoryOrCreate: %+v %v", mounts, err)
	}
	if fi, err := os.Stat(filepath.Join(host, "new", "dir")); err != nil || !fi.IsDir() {
		t.Fatalf("DirectoryOrCreate made no directory: %v", err)
	}
	if _, err := prepare(filepath.Join(host, "sub", "made"), "FileOrCreate"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(host, "sub", "made")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("FileOrCreate made no file: %v", err)
	}
	for _, ok := range []struct{ path, typ string }{{filepath.Join(host, "file"), "File"}, {filepath.Join(host, "new"), "Directory"}, {filepath.Join(host, "new"), ""}} {
		if _, err := prepare(ok.path, ok.typ); err != nil {
			t.Errorf("%s as %q: %v", ok.path, ok.typ, err)
		}
	}
	for _, tc := range []struct{ path, typ, want string }{
		{filepath.Join(host, "file"), "Directory", "is not of type Directory"},
		{filepath.Join(host, "new"), "File", "is not of type File"},
		{filepath.Join(host, "absent"), "File", "does not exist on the node"},
		{filepath.Join(host, "absent"), "", "does not exist on the node"},
		{filepath.Join(host, "file"), "Socket", "is not of type Socket"},
		{root, "Directory", "reaches the agent's data directory"},
		{filepath.Join(root, "claims"), "DirectoryOrCreate", "reaches the agent's data directory"},
		{host, "Directory", "reaches the agent's data directory"},
		{"/", "Directory", "reaches the agent's data directory"},
		{filepath.Join(host, "link", "pods"), "DirectoryOrCreate", "reaches the agent's data directory"},
	} {
		_, err := prepare(tc.path, tc.typ)
		var ce *configError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s as %q: %v, want a config error saying %q", tc.path, tc.typ, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "claims")); !os.IsNotExist(err) {
		t.Errorf("a refused DirectoryOrCreate made %s", filepath.Join(root, "claims"))
	}
}
