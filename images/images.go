// Package images builds the OCI images that berth's tests and examples run,
// and serves them from a registry on loopback: the machines berth is tested
// on cannot pull from any public registry, so every image is made here from
// Go packages of this module, the host's busybox-static and programs from
// the host's Debian packages (HostBinary).
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Created is the creation time stamped on every image and file, so that two
// builds of the same source give the same digest.
var Created = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// defaultPath is the PATH images get; busybox's applets live in /bin.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type options struct {
	busybox string
	env     []string
	cmd     []string
	user    string
}

// Option changes how an image is built.
type Option func(*options)

// WithBusybox adds busybox-static as /bin/busybox with all its applets
// linked in /bin (sh, wget, sleep, cat, ...) plus a minimal /etc/passwd,
// so exec probes and `sh -c` commands work in the image.
func WithBusybox() Option {
	return func(o *options) {
		if o.busybox == "" {
			o.busybox = DefaultBusybox
		}
	}
}

// WithEnv adds NAME=value pairs to the image config's environment.
func WithEnv(env ...string) Option { return func(o *options) { o.env = append(o.env, env...) } }

// WithUser sets the user the image runs as ("uid" or "uid:gid"), where a
// pod's securityContext does not say.
func WithUser(user string) Option { return func(o *options) { o.user = user } }

// BuildGoImage builds the Go package pkg (an import path or a ./relative
// path) with CGO_ENABLED=0 and -trimpath into an image whose only file is
// the binary at /app, its entrypoint. The image is for linux on the host's
// architecture.
func BuildGoImage(ctx context.Context, pkg string, opts ...Option) (v1.Image, error) {
	bin, err := goBuild(ctx, pkg)
	if err != nil {
		return nil, err
	}
	return build(ctx, []file{{name: "app", mode: 0o755, data: bin}}, []string{"/app"}, opts)
}

// build makes an image of one layer of files, on top of busybox's if an
// option asks for it.
func build(ctx context.Context, files []file, entrypoint []string, opts []Option) (v1.Image, error) {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	layers := []v1.Layer{}
	if o.busybox != "" {
		l, err := busyboxLayer(ctx, o.busybox)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	l, err := layerOf(files)
	if err != nil {
		return nil, err
	}
	layers = append(layers, l)
	return assemble(layers, entrypoint, o)
}

// Busybox returns an image holding only busybox-static (see WithBusybox)
// with `sh` as its command.
func Busybox(ctx context.Context, opts ...Option) (v1.Image, error) {
	o := &options{busybox: DefaultBusybox, cmd: []string{"sh"}}
	for _, opt := range opts {
		opt(o)
	}
	l, err := busyboxLayer(ctx, o.busybox)
	if err != nil {
		return nil, err
	}
	return assemble([]v1.Layer{l}, nil, o)
}

func assemble(layers []v1.Layer, entrypoint []string, o *options) (v1.Image, error) {
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = runtime.GOARCH
	cf.OS = "linux"
	cf.Created = v1.Time{Time: Created}
	cf.Config.Entrypoint = entrypoint
	cf.Config.Cmd = o.cmd
	cf.Config.Env = append([]string{defaultPath}, o.env...)
	cf.Config.User = o.user
	return mutate.ConfigFile(img, cf)
}

func goBuild(ctx context.Context, pkg string) ([]byte, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		// `go test` does not always put its go on PATH; the toolchain that
		// built this binary is the next best.
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	tmp, err := os.MkdirTemp("", "berth-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "app")
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.Bytes())
	}
	return os.ReadFile(out)
}

// file is one entry of a layer: a regular file, a directory (name ends in
// "/") or a symlink (link set).
type file struct {
	name string
	mode int64
	data []byte
	link string
}

func busyboxLayer(ctx context.Context, bin string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	// Ask the binary itself which applets it has, so the links match it.
	out, err := exec.CommandContext(ctx, bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	files := []file{
		{name: "bin/", mode: 0o755},
		{name: "etc/", mode: 0o755},
		{name: "tmp/", mode: 0o1777},
		{name: "bin/busybox", mode: 0o755, data: data},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		files = append(files, file{name: "bin/" + applet, mode: 0o777, link: "busybox"})
	}
	return layerOf(files)
}

// layerOf writes files into an uncompressed tar with fixed owners and times
// and wraps it as an OCI layer; gzip output is deterministic for the same
// input, so the layer digest is too.
func layerOf(files []file) (v1.Layer, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: Created, Format: tar.FormatPAX}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		case strings.HasSuffix(f.name, "/"):
			h.Typeflag = tar.TypeDir
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", path.Clean(f.name), err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
