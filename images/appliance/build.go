// Package appliance builds the bootable master image: Debian's kernel, an
// initramfs holding the static berth binary as init, and an ISO (BIOS and
// UEFI) that boots the two. Inputs are Debian packages fetched with
// apt-get (never installed) and the berth binary; the same inputs and
// SOURCE_DATE_EPOCH give the same bytes.
package appliance

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config says what to build and where.
type Config struct {
	// Berth is the static berth binary (CGO_ENABLED=0).
	Berth string
	// OutDir receives vmlinuz, initramfs.img and berth-appliance.iso.
	OutDir string
	// CacheDir keeps downloaded and unpacked .debs between builds.
	CacheDir string
	// KernelPackage defaults to linux-image-amd64 (resolved to the
	// versioned package it depends on).
	KernelPackage string
	// Modules default to DefaultModules.
	Modules []string
	// Epoch is every timestamp in the outputs; default SOURCE_DATE_EPOCH,
	// else 1980-01-01.
	Epoch int64
	// Cmdline is the kernel command line the ISO boots with.
	Cmdline string
	// NoISO skips the ISO.
	NoISO bool
}

// mke2fsPackages hold mke2fs and the shared libraries it loads: the data
// disk is formatted ext4 (journalled, so a power cut does not need fsck)
// and no Go library writes ext4.
var mke2fsPackages = []string{"e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1", "libc6"}

// DefaultCmdline is the ISO's kernel command line: the status screen on
// both the screen and the first serial port (the last console= is the one
// berth logs to).
const DefaultCmdline = "console=tty0 console=ttyS0,115200n8 panic=10"

// Result lists what Build wrote.
type Result struct {
	Kernel, Initramfs, ISO string
	KernelVersion          string
	Modules                []Module
}

// Build makes the artefacts.
func Build(cfg Config) (*Result, error) {
	if cfg.KernelPackage == "" {
		cfg.KernelPackage = "linux-image-amd64"
	}
	if cfg.Modules == nil {
		cfg.Modules = DefaultModules
	}
	if cfg.Epoch == 0 {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			e, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("SOURCE_DATE_EPOCH: %v", err)
			}
			cfg.Epoch = e
		} else {
			// 1980-01-01, the earliest time FAT (the ISO's EFI image) holds.
			cfg.Epoch = 315532800
		}
	}
	if cfg.Cmdline == "" {
		cfg.Cmdline = DefaultCmdline
	}
	berth, err := os.ReadFile(cfg.Berth)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	debs := &debCache{dir: cfg.CacheDir}
	kpkg := cfg.KernelPackage
	// linux-image-amd64 and the like are metapackages; linux-image-6.1.0-…
	// is the kernel itself.
	if v, ok := strings.CutPrefix(kpkg, "linux-image-"); ok && !strings.Contains(kpkg, "=") && (v == "" || v[0] < '0' || v[0] > '9') {
		if kpkg, err = debs.kernelPackage(kpkg); err != nil {
			return nil, err
		}
	}
	kroot, err := debs.get(kpkg)
	if err != nil {
		return nil, err
	}
	vers, _ := filepath.Glob(filepath.Join(kroot, "lib/modules/*"))
	if len(vers) != 1 {
		return nil, fmt.Errorf("%s: want one lib/modules/VERSION, found %d", kpkg, len(vers))
	}
	modDir := vers[0]
	kver := filepath.Base(modDir)
	res := &Result{KernelVersion: kver,
		Kernel:    filepath.Join(cfg.OutDir, "vmlinuz"),
		Initramfs: filepath.Join(cfg.OutDir, "initramfs.img")}

	a := NewArchive()
	// The kernel needs /dev/console before init runs to give it stdin,
	// stdout and stderr.
	a.CharDev("dev/console", 0o600, 5, 1)
	for _, d := range []string{"proc", "sys", "run", "tmp", "etc", "var/lib/berth", "mnt"} {
		a.Dir(d, 0o755)
	}
	a.Dir("tmp", 0o1777)
	a.File("bin/berth", 0o755, berth)
	a.Symlink("init", "bin/berth")
	a.File("etc/os-release", 0o644, []byte("NAME=berth\nID=berth\nPRETTY_NAME=\"berth appliance\"\n"))

	mods, err := ModuleOrder(modDir, cfg.Modules)
	if err != nil {
		return nil, err
	}
	res.Modules = mods
	var list bytes.Buffer
	for _, m := range mods {
		b, err := os.ReadFile(filepath.Join(modDir, m.Path))
		if err != nil {
			return nil, err
		}
		dest := filepath.Join("lib/modules", kver, m.Path)
		a.File(dest, 0o644, b)
		fmt.Fprintln(&list, "/"+dest)
	}
	// The boot side loads exactly these, in this order.
	a.File("lib/modules/berth.load", 0o644, list.Bytes())

	var roots []string
	for _, p := range mke2fsPackages {
		r, err := debs.get(p)
		if err != nil {
			return nil, err
		}
		roots = append(roots, r)
	}
	if err := addDynamic(a, roots, "sbin/mke2fs", "sbin/mke2fs"); err != nil {
		return nil, err
	}
	conf, err := os.ReadFile(filepath.Join(roots[0], "etc/mke2fs.conf"))
	if err != nil {
		return nil, err
	}
	a.File("etc/mke2fs.conf", 0o644, conf)

	if err := writeFile(res.Initramfs, func(f *os.File) error { return a.WriteGzip(f, cfg.Epoch) }); err != nil {
		return nil, err
	}
	kernel, err := os.ReadFile(filepath.Join(kroot, "boot", "vmlinuz-"+kver))
	if err != nil {
		return nil, err
	}
	if err := writeFile(res.Kernel, func(f *os.File) error { _, err := f.Write(kernel); return err }); err != nil {
		return nil, err
	}
	for _, p := range []string{res.Kernel, res.Initramfs} {
		t := time.Unix(cfg.Epoch, 0)
		os.Chtimes(p, t, t)
	}
	if !cfg.NoISO {
		res.ISO = filepath.Join(cfg.OutDir, "berth-appliance.iso")
		if err := buildISO(res, cfg); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// writeFile writes through a temporary file so a failed build never
// leaves a half-written artefact under the final name.
func writeFile(path string, fill func(*os.File) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
