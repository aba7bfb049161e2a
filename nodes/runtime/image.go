package runtime

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/remotes/docker/config"
	"github.com/distribution/reference"

	"github.com/berth/berth/schemas/objects"
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
// A pull secret's credentials go to the one registry host they match.
func (r *Runtime) resolver(ctx context.Context, auth *objects.RegistryAuth, authHost string) remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: func(host string) ([]docker.RegistryHost, error) {
			opts := config.HostOptions{}
			if r.isPlainHTTP(host) {
				opts.DefaultScheme = "http"
			}
			if auth != nil {
				opts.Credentials = func(h string) (string, string, error) {
					if registryHost(h) != authHost {
						return "", "", nil
					}
					return auth.Username, auth.Password, nil
				}
			}
			return config.ConfigureHosts(ctx, opts)(host)
		},
	})
}

// credentials picks the pull secret entry for an image as the kubelet's
// keyring does: the entry's host matches the image's (a leading "*."
// stands for one label; Docker Hub's many names are one) and its path is a
// prefix of the image's; the longest match wins. It returns the entry and
// the image's registry host.
func credentials(image string, auths []objects.RegistryAuth) (*objects.RegistryAuth, string) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, ""
	}
	host, path := registryHost(reference.Domain(named)), reference.Path(named)
	var best *objects.RegistryAuth
	bestLen := -1
	for i, a := range auths {
		key := a.Registry
		for _, scheme := range []string{"https://", "http://"} {
			key = strings.TrimPrefix(key, scheme)
		}
		keyHost, keyPath, _ := strings.Cut(strings.TrimSuffix(key, "/"), "/")
		keyHost = registryHost(keyHost)
		if keyHost == "docker.io" && (keyPath == "v1" || keyPath == "v2") {
			keyPath = "" // https://index.docker.io/v1/ names the Hub, not a path
		}
		if !hostMatches(keyHost, host) || (keyPath != "" && path != keyPath && !strings.HasPrefix(path, keyPath+"/")) {
			continue
		}
		if len(key) > bestLen {
			best, bestLen = &auths[i], len(key)
		}
	}
	return best, host
}

// registryHost is a registry's host as a pull secret names it: Docker
// Hub's names are docker.io.
func registryHost(h string) string {
	switch h = strings.ToLower(h); h {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return h
}

func hostMatches(pattern, host string) bool {
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		_, parent, found := strings.Cut(host, ".")
		return found && parent == rest
	}
	return pattern == host
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
// the policy says, and tells what it does as the kubelet's events say it.
// Errors are *imageError.
func (r *Runtime) ensureImage(ctx context.Context, image, policy string, auths []objects.RegistryAuth, tell func(reason, message string)) (containerd.Image, error) {
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
			tell("Pulled", fmt.Sprintf("Container image %q already present on machine", image))
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
	tell("Pulling", fmt.Sprintf("Pulling image %q", image))
	auth, host := credentials(name, auths)
	img, err := r.client.Pull(ctx, name,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(r.snapshotter),
		containerd.WithResolver(r.resolver(ctx, auth, host)))
	if err != nil {
		return nil, &imageError{ReasonErrImagePull, fmt.Errorf("pull %s: %w", name, err)}
	}
	took := time.Since(start).Round(time.Millisecond)
	r.log.Info("pulled image", "image", name, "digest", img.Target().Digest, "took", took)
	tell("Pulled", fmt.Sprintf("Successfully pulled image %q in %s", image, took))
	return img, nil
}

func (r *Runtime) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, r.snapshotter)
	if err != nil || ok {
		return err
	}
	return img.Unpack(ctx, r.snapshotter)
}
