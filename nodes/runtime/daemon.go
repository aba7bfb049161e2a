package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/appliance/retry"
)

// Daemon is a containerd process of berth's own, with its root, state,
// socket and config under one data directory. Tests and `berth up` without
// a containerd socket use it; it never touches the system's containerd.
type Daemon struct {
	dir, address, logPath string
	bin, configPath       string

	mu      sync.Mutex
	cmd     *exec.Cmd     // the current process
	started time.Time     // when it started
	exited  chan struct{} // closed when it has exited
	waitErr error         // its exit, once exited is closed

	stopOnce sync.Once
	stopping chan struct{} // closed by Stop: an exit is no longer a crash
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
	d := &Daemon{dir: dir, address: address, logPath: filepath.Join(dir, "containerd.log"), bin: bin, configPath: configPath,
		stopping: make(chan struct{})}
	if err := d.start(); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	if err := d.waitServing(ctx); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// start runs a containerd process; on error exited is closed at once.
func (d *Daemon) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.exited, d.started = make(chan struct{}), time.Now()
	select {
	case <-d.stopping: // Stop reads cmd under mu: none may start after it
		d.waitErr = errors.New("containerd is stopped")
		close(d.exited)
		return d.waitErr
	default:
	}
	// A socket file left by a killed daemon would make us talk to nothing.
	os.Remove(d.address)
	logFile, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		defer logFile.Close()
		d.cmd = exec.Command(d.bin, "--config", d.configPath)
		d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
		// Its own process group, so a terminal's ^C reaches us and we stop
		// it in order rather than both dying at once.
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = d.cmd.Start()
	}
	if err != nil {
		d.waitErr = err
		close(d.exited)
		return err
	}
	// The pid lets whoever finds this dir later (a crashed test's cleanup,
	// an operator) stop the daemon.
	_ = os.WriteFile(filepath.Join(d.dir, "containerd.pid"), []byte(strconv.Itoa(d.cmd.Process.Pid)+"\n"), 0o644)
	cmd, exited := d.cmd, d.exited
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.waitErr = err
		d.mu.Unlock()
		close(exited)
	}()
	return nil
}

// current is the process running now: its exit channel, and when it started.
func (d *Daemon) current() (<-chan struct{}, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.exited, d.started
}

func (d *Daemon) exitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waitErr
}

// Supervise restarts containerd whenever it exits until Stop, as systemd
// restarts the system's: waiting 1 s after a crash, doubling up to 30 s
// while it keeps crashing within a minute of its start. The containers
// live on in their shims, and the new daemon adopts them.
func (d *Daemon) Supervise(log *slog.Logger) {
	go func() {
		failures := 0
		for {
			exited, started := d.current()
			select {
			case <-d.stopping:
				return
			case <-exited:
			}
			if time.Since(started) > time.Minute {
				failures = 0
			}
			failures++
			delay := retry.Backoff{Base: time.Second, Max: 30 * time.Second}.Delay(failures)
			log.Error("containerd exited; restarting it", "err", d.exitErr(), "in", delay, "log", d.logPath)
			select {
			case <-d.stopping:
				return
			case <-time.After(delay):
			}
			if err := d.start(); err != nil {
				log.Error("restarting containerd", "err", err)
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-d.stopping:
				case <-ctx.Done():
				}
				cancel()
			}()
			if err := d.waitServing(ctx); err == nil {
				log.Info("containerd restarted and serving")
			}
			cancel()
		}
	}()
}

func (d *Daemon) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	exited, _ := d.current()
	for {
		select {
		case <-exited:
			return fmt.Errorf("containerd exited at start (%v): %s", d.exitErr(), d.logTail())
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
	d.stopOnce.Do(func() { close(d.stopping) })
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	os.Remove(d.address)
	os.Remove(filepath.Join(d.dir, "containerd.pid"))
	var exitErr *exec.ExitError
	if err := d.exitErr(); err != nil && !(errors.As(err, &exitErr) && strings.Contains(exitErr.String(), "signal")) {
		return err
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
