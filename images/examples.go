package images

import (
	"context"
	"fmt"
	"path"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RedisServer is where Debian's redis-server package puts the server.
const RedisServer = "/usr/bin/redis-server"

// Example builds the image an example's manifests name by ref
// (localhost:5000/berth/hello:1 in examples/hello), chosen by the last
// element of its repository:
//
//   - hello: images/hello, with busybox for exec probes
//   - shop-web, shop-api: images/shop/web and api, with VERSION=<tag> in
//     their environment (the page shows it, so a new tag's rollout shows)
//   - redis: Debian's redis-server (HostBinary), with busybox for the
//     shell that hands it its password
func Example(ctx context.Context, ref string) (v1.Image, error) {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	nobody := WithUser("65534:65534")
	switch repo := path.Base(tag.RepositoryStr()); repo {
	case "hello":
		return BuildGoImage(ctx, "github.com/berth/berth/images/hello", WithBusybox())
	case "shop-web", "shop-api":
		return BuildGoImage(ctx, "github.com/berth/berth/images/shop/"+repo[len("shop-"):], WithEnv("VERSION="+tag.TagStr()), nobody)
	case "redis":
		return HostBinary(ctx, RedisServer, WithBusybox(), nobody)
	default:
		return nil, fmt.Errorf("%s: no example image is called %q (want hello, shop-web, shop-api or redis)", ref, repo)
	}
}
