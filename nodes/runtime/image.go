package runtime

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/remotes/docker/config"
	"github.com/distribution/reference"
)

// pullFailure remembers a failed pull so the next attempts back off, as
// ImagePullBackOff does. It is kept in memory only: after an agent
// restart the first attempt is immediate, which is harmless.
type pullFailure struct {
	image string
	count int
	last  time.Time
	err   error
}

// imageError is a pull that failed, with the Reason* word for it.
type imageError struct {
	reason string
	err    error
}

func (e *imageError) Error() string { return e.err.Error() }
func (e *imageError) Unwrap() error { return e.err }

// resolver builds a registry resolver in the client: with containerd's Go
// client, pulls run here and not in the daemon, so the daemon's registry
// configuration does not apply.
func (r *Runtime) resolver(ctx context.Context) remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: func(host string) ([]docker.RegistryHost, error) {
			opts := config.HostOptions{}
			if r.isPlainHTTP(host) {
				opts.DefaultScheme = "http"
			}
			return config.ConfigureHosts(ctx, opts)(host)
		},
	})
}

// isPlainHTTP: a listed host matches with or without its port; loopback
// registries are plain HTTP as well (containerd already tries HTTP for
// loopback with a port; this also covers them on 80 and 443).
func (r *Runtime) isPlainHTTP(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	return slices.Contains(r.plainHTTP, host) || slices.Contains(r.plainHTTP, h)
}

// normalizeImage turns "hello" into "docker.io/library/hello:latest".
func normalizeImage(image string) (string, error) {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", err
	}
	return named.String(), nil
}

// pullPolicy defaults like Kubernetes: Always for :latest or no tag,
// IfNotPresent for any other tag or a digest.
func pullPolicy(policy, image string) string {
	if policy != "" {
		return policy
	}
	if named, err := reference.ParseNormalizedNamed(image); err == nil {
		if _, ok := named.(reference.Digested); ok {
			return "IfNotPresent"
		}
		if t, ok := named.(reference.Tagged); ok && t.Tag() != "latest" {
			return "IfNotPresent"
		}
	}
	return "Always"
}

// ensureImage returns the image unpacked in the snapshotter, pulling it as
// the policy says. Errors are *imageError.
func (r *Runtime) ensureImage(ctx context.Context, image, policy string) (containerd.Image, error) {
	name, err := normalizeImage(image)
	if err != nil {
		return nil, &imageError{ReasonInvalidImageName, fmt.Errorf("invalid image name %q: %w", image, err)}
	}
	policy = pullPolicy(policy, image)
	if policy != "Always" {
		img, err := r.client.GetImage(ctx, name)
		if err == nil {
			if err := r.unpack(ctx, img); err != nil {
				return nil, &imageError{ReasonErrImagePull, err}
			}
			return img, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, &imageError{ReasonErrImagePull, err}
		}
		if policy == "Never" {
			return nil, &imageError{ReasonErrImageNeverPull, fmt.Errorf("image %s is not present and imagePullPolicy is Never", name)}
		}
	}
	start := time.Now()
	img, err := r.client.Pull(ctx, name,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(r.snapshotter),
		containerd.WithResolver(r.resolver(ctx)))
	if err != nil {
		return nil, &imageError{ReasonErrImagePull, fmt.Errorf("pull %s: %w", name, err)}
	}
	r.log.Info("pulled image", "image", name, "digest", img.Target().Digest, "took", time.Since(start).Round(time.Millisecond))
	return img, nil
}

func (r *Runtime) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, r.snapshotter)
	if err != nil || ok {
		return err
	}
	return img.Unpack(ctx, r.snapshotter)
}
