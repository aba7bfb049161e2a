package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"golang.org/x/sys/unix"
)

// Daemon is a containerd process of berth's own, with its root, state,
// socket and config under one data directory. Tests and `berth up` without
// a containerd socket use it; it never touches the system's containerd.
type Daemon struct {
	dir     string
	address string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// maxSocketPath keeps under the 108 bytes of sun_path.
const maxSocketPath = 100

// StartContainerd starts containerd with everything under dataDir and waits
// until it serves its API. Its output goes to dataDir/containerd.log.
// The CRI plugin is disabled: berth drives containerd through its own
// client and CNI, and CRI would only log errors about missing CNI config.
func StartContainerd(ctx context.Context, dataDir string) (*Daemon, error) {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"root", "state", "opt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o711); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	address := filepath.Join(dir, "containerd.sock")
	if len(address)+len(".ttrpc") > maxSocketPath {
		// A deep data dir would overflow sun_path; fall back to /run with a
		// name derived from the dir so two daemons never share a socket.
		sum := sha256.Sum256([]byte(dir))
		if err := os.MkdirAll("/run/berth", 0o711); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
		address = fmt.Sprintf("/run/berth/containerd-%x.sock", sum[:6])
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), address, address+".ttrpc", filepath.Join(dir, "opt"))
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	// A daemon left running by a killed berth still owns root and state:
	// stop it, as a restart of the system's containerd would. Its
	// containers live on in their shims and are adopted by the new one.
	if err := stopStale(filepath.Join(dir, "containerd.pid")); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	// A socket file left by a killed daemon would make us talk to nothing.
	os.Remove(address)

	logPath := filepath.Join(dir, "containerd.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--config", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a terminal's ^C reaches us and we stop it
	// in order rather than both dying at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	d := &Daemon{dir: dir, address: address, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	// The pid lets whoever finds this dir later (a crashed test's cleanup,
	// an operator) stop the daemon.
	_ = os.WriteFile(filepath.Join(dir, "containerd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	if err := d.waitServing(ctx); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("containerd exited at start (%v): %s", d.waitErr, d.logTail())
		case <-ctx.Done():
			return fmt.Errorf("containerd did not start serving: %w: %s", ctx.Err(), d.logTail())
		case <-tick.C:
		}
		if _, err := os.Stat(d.address); err != nil {
			continue
		}
		c, err := containerd.New(d.address, containerd.WithTimeout(time.Second))
		if err != nil {
			continue
		}
		ok, err := c.IsServing(ctx)
		c.Close()
		if err == nil && ok {
			return nil
		}
	}
}

func (d *Daemon) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// Address is the daemon's gRPC socket.
func (d *Daemon) Address() string { return d.address }

// Dir is the daemon's data directory.
func (d *Daemon) Dir() string { return d.dir }

// Stop asks containerd to exit and kills it after 10 s. Like restarting a
// system containerd, it leaves running containers (their shims) alone:
// remove pods first to stop them.
func (d *Daemon) Stop() error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	os.Remove(d.address)
	os.Remove(filepath.Join(d.dir, "containerd.pid"))
	var exitErr *exec.ExitError
	if d.waitErr != nil && !(errors.As(d.waitErr, &exitErr) && strings.Contains(exitErr.String(), "signal")) {
		return d.waitErr
	}
	return nil
}

// SnapshotterFor picks the snapshotter for a containerd whose root is in
// dir: overlayfs, unless dir is itself on overlayfs (containerd inside a
// container), where overlay mounts fail and "native" (plain copies) works.
func SnapshotterFor(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.OVERLAYFS_SUPER_MAGIC {
		return "native"
	}
	return "overlayfs"
}

// stopStale stops the containerd whose pid the file names, if that process
// is still a containerd, waiting up to 10 s before SIGKILL.
func stopStale(pidFile string) error {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil // not ours to interpret; the new daemon overwrites it
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "containerd" {
		return nil // gone, or the pid was reused by something else
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !alive(pid) {
			return nil
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for range 100 {
		if !alive(pid) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("stale containerd (pid %d) does not exit", pid)
}

// alive reports whether pid runs; a zombie (exited, not yet reaped by
// whoever inherited it) does not.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may
	// itself contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
