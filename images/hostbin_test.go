package images

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestHostBinary packs Debian's redis-server: the image holds it under its
// own name, the interpreter and every library ldd lists, and (as root) runs
// chrooted into the image's files alone.
func TestHostBinary(t *testing.T) {
	if _, err := os.Stat(RedisServer); err != nil {
		t.Fatalf("%v: test/setup.sh installs Debian's redis-server", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img, err := HostBinary(ctx, RedisServer, WithUser("65534:65534"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := HostBinary(ctx, RedisServer, WithUser("65534:65534"))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("builds are not reproducible: %s != %s", d1, d2)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != RedisServer || cf.Config.User != "65534:65534" {
		t.Errorf("config = %+v", cf.Config)
	}

	root := t.TempDir()
	names := map[string]bool{} // base names of every file and link
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(Created) {
			t.Errorf("%s: time %v", h.Name, h.ModTime)
		}
		names[path.Base(h.Name)] = true
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode))
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, os.FileMode(h.Mode))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, RedisServer)); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		t.Errorf("%s in the image: %v %v, want an executable file", RedisServer, fi, err)
	}

	// ldd, the loader itself, is the independent judge of what is needed.
	out, err := exec.Command("ldd", RedisServer).Output()
	if err != nil {
		t.Fatal(err)
	}
	libs := regexp.MustCompile(`(?m)^\s*(\S+) => `).FindAllStringSubmatch(string(out), -1)
	if len(libs) < 3 {
		t.Fatalf("ldd lists %d libraries:\n%s", len(libs), out)
	}
	for _, m := range libs {
		if !names[m[1]] {
			t.Errorf("the image has no %s", m[1])
		}
	}
	if !names["ld-linux-x86-64.so.2"] && !names["ld-linux-aarch64.so.1"] {
		t.Error("the image has no ELF interpreter")
	}

	if os.Geteuid() != 0 {
		t.Log("not root: the image's files are not run chrooted")
		return
	}
	cmd := exec.CommandContext(ctx, RedisServer, "--version")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "Redis server v=") {
		t.Errorf("redis-server --version in the image: %v\n%s", err, got)
	}
}
