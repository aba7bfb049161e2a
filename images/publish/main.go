// Command publish builds the examples' images and pushes them to a
// registry, for `make demo`: the demo machine cannot pull from any public
// registry. Each reference's last path element picks the image (see
// images.Example): hello, shop-web, shop-api or redis.
//
//	go run ./images/publish localhost:5000/berth/hello:1
//	go run ./images/publish localhost:5000/berth/shop-web:1 localhost:5000/berth/shop-web:2 \
//		localhost:5000/berth/shop-api:1 localhost:5000/berth/redis:7
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/berth/berth/images"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: publish REF...   (e.g. localhost:5000/berth/hello:1)")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, ref := range os.Args[1:] {
		img, err := images.Example(ctx, ref)
		if err == nil {
			err = images.Push(ctx, ref, img)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
			os.Exit(1)
		}
		fmt.Println("pushed", ref)
	}
}
