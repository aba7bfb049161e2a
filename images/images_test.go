package images

import (
	"archive/tar"
	"context"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestBuildPushPull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	img, err := BuildGoImage(ctx, "github.com/berth/berth/images/hello", WithBusybox(), WithEnv("VERSION=v1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := BuildGoImage(ctx, "github.com/berth/berth/images/hello", WithBusybox(), WithEnv("VERSION=v1"))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("builds are not reproducible: %s != %s", d1, d2)
	}

	reg, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ref, err := reg.Push(ctx, "hello:v1", img)
	if err != nil {
		t.Fatal(err)
	}
	if ref != reg.Host()+"/hello:v1" {
		t.Errorf("ref = %s", ref)
	}

	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(tag, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != d1 {
		t.Errorf("pulled digest %s, pushed %s", d, d1)
	}
	cf, err := pulled.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/app" || !cf.Created.Time.Equal(Created) {
		t.Errorf("config = %+v created %v", cf.Config, cf.Created)
	}

	files := map[string]*tar.Header{}
	tr := tar.NewReader(mutate.Extract(pulled))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
	}
	for _, f := range []string{"app", "bin/busybox", "bin/sh", "bin/wget", "etc/passwd"} {
		if files[f] == nil {
			t.Errorf("image has no %s", f)
		}
	}
	if h := files["app"]; h != nil && h.Mode&0o111 == 0 {
		t.Errorf("/app is not executable: %o", h.Mode)
	}

	// The registry answers "not found" for an unknown image, as a real one does.
	missing, _ := name.ParseReference(reg.Ref("nope:v1"), name.Insecure)
	if _, err := remote.Image(missing, remote.WithContext(ctx)); err == nil {
		t.Error("pulling an unknown image succeeded")
	}
}
