// Command publish builds the example app's image (images/hello, static,
// with busybox for exec probes) and pushes it to a registry, for `make demo`:
// the demo machine cannot pull from any public registry.
//
//	go run ./images/publish localhost:5000/berth/hello:1
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
	img, err := images.BuildGoImage(ctx, "github.com/berth/berth/images/hello", images.WithBusybox())
	if err != nil {
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
	for _, ref := range os.Args[1:] {
		if err := images.Push(ctx, ref, img); err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
			os.Exit(1)
		}
		fmt.Println("pushed", ref)
	}
}
