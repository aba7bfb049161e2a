package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// NetNSPath is where the named namespace name is (or would be) mounted.
func (n *Network) NetNSPath(name string) string { return filepath.Join(n.cfg.NetNSDir, name) }

// CreateNetNS creates a network namespace and pins it at NetNSPath(name)
// with a bind mount, as `ip netns add` does, so it outlives every process
// in it and `ip netns exec` can enter it. An existing namespace of that name
// is returned as is.
func (n *Network) CreateNetNS(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return "", fmt.Errorf("network: invalid netns name %q", name)
	}
	return createNetNS(n.cfg.NetNSDir, name)
}

// DeleteNetNS unmounts and removes the named namespace; the kernel frees it
// once no process is left in it. A missing namespace is not an error.
func (n *Network) DeleteNetNS(name string) error {
	return deleteNetNS(n.NetNSPath(name))
}

func createNetNS(dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("network: %w", err)
	}
	if err := makeShared(dir); err != nil {
		return "", fmt.Errorf("network: %s: %w", dir, err)
	}
	path := filepath.Join(dir, name)
	if IsNetNS(path) {
		return path, nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return "", fmt.Errorf("network: %w", err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		// Unshare on a thread of our own and never unlock it: when this
		// goroutine returns, the Go runtime ends the thread, and the new
		// namespace can not leak into other goroutines.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", fmt.Errorf("network: netns %s: %w", name, err)
	}
	return path, nil
}

// makeShared makes dir a shared mount point, as iproute2 does for
// /var/run/netns, so that unmounting a namespace there also unmounts it in
// mount namespaces created since (containers'), letting the kernel free it.
func makeShared(dir string) error {
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil || !errors.Is(err, unix.EINVAL) {
		return err
	}
	// EINVAL: dir is not a mount point yet.
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
}

func deleteNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("network: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// IsNetNS tells whether path is a mounted network namespace (nsfs), not
// just the empty file a namespace was once mounted on.
func IsNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
