// Command mkimage builds the appliance image: `make image` runs it.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/berth/berth/images/appliance"
)

func main() {
	var cfg appliance.Config
	flag.StringVar(&cfg.Berth, "berth", "out/berth", "static berth binary")
	flag.StringVar(&cfg.OutDir, "out", "out", "output directory")
	flag.StringVar(&cfg.CacheDir, "cache", "out/cache/debs", "where downloaded Debian packages are kept")
	flag.StringVar(&cfg.KernelPackage, "kernel", "linux-image-amd64", "Debian kernel package")
	flag.BoolVar(&cfg.NoISO, "no-iso", false, "skip the ISO")
	flag.Parse()
	res, err := appliance.Build(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	for _, p := range []string{res.Kernel, res.Initramfs, res.ISO} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
		fmt.Printf("%-40s %6.1f MB\n", p, float64(fi.Size())/1e6)
	}
	fmt.Printf("kernel %s, %d modules\n", res.KernelVersion, len(res.Modules))
}
