package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is an in-process OCI registry (go-containerregistry's
// implementation of the distribution API, kept in memory) served over plain
// HTTP on 127.0.0.1. containerd's client pulls from it as from any registry.
type Registry struct {
	srv  *http.Server
	ln   net.Listener
	host string
	done chan struct{}
}

// NewRegistry starts a registry on a random loopback port.
func NewRegistry() (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Registry{
		ln:   ln,
		host: ln.Addr().String(),
		srv: &http.Server{
			Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
			ReadHeaderTimeout: 10 * time.Second,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("images: registry: %v", err)
		}
	}()
	return r, nil
}

// Host is the registry's host:port, e.g. 127.0.0.1:39211.
func (r *Registry) Host() string { return r.host }

// Ref returns the full reference of repo[:tag] in this registry.
func (r *Registry) Ref(repoTag string) string {
	if strings.HasPrefix(repoTag, r.host+"/") {
		return repoTag
	}
	return r.host + "/" + repoTag
}

// Push uploads img as ref, which is relative to this registry ("hello:v1")
// or already starts with Host(). It returns the full reference.
func (r *Registry) Push(ctx context.Context, ref string, img v1.Image) (string, error) {
	full := r.Ref(ref)
	return full, Push(ctx, full, img)
}

// Push uploads img to a full reference (host/repo:tag), over plain HTTP
// when the registry is on loopback, as go-containerregistry decides for
// insecure references.
func Push(ctx context.Context, ref string, img v1.Image) error {
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// Close stops serving. Pulls in flight fail, which tests use to simulate a
// registry that went down.
func (r *Registry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	<-r.done
	return err
}
