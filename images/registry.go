package images

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
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
	auth *authn.Basic
}

// RegistryOption configures NewRegistry.
type RegistryOption func(*Registry)

// WithBasicAuth makes the registry answer only requests with these
// credentials (401 with a Basic challenge otherwise), as a private
// registry does; Push sends them.
func WithBasicAuth(user, password string) RegistryOption {
	return func(r *Registry) { r.auth = &authn.Basic{Username: user, Password: password} }
}

// NewRegistry starts a registry on a random loopback port.
func NewRegistry(opts ...RegistryOption) (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Registry{ln: ln, host: ln.Addr().String(), done: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if r.auth != nil {
		h = basicAuth(r.auth, h)
	}
	r.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
	var opts []remote.Option
	if r.auth != nil {
		opts = append(opts, remote.WithAuth(r.auth))
	}
	return full, Push(ctx, full, img, opts...)
}

// Push uploads img to a full reference (host/repo:tag), over plain HTTP
// when the registry is on loopback, as go-containerregistry decides for
// insecure references.
func Push(ctx context.Context, ref string, img v1.Image, opts ...remote.Option) error {
	tag, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img, append(opts, remote.WithContext(ctx))...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

func basicAuth(want *authn.Basic, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, pass, ok := req.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(want.Username)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(want.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth test registry"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, req)
	})
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
