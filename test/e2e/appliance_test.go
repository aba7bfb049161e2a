// Package e2e holds end-to-end tests that run berth the way users do.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/images/appliance"
	"github.com/berth/berth/test/harness"
)

// Under software emulation (KVM hangs on these machines) a boot takes tens
// of seconds; these bounds leave room for a loaded CI machine.
const (
	bootTimeout  = 6 * time.Minute
	syncTimeout  = 4 * time.Minute
	downTimeout  = 2 * time.Minute
	applianceTok = "e2eadm.0123456789abcdef"
	configToken  = "cfgdsk.0123456789abcdef"
)

// TestApplianceImage builds the master image twice (the bytes must match),
// boots kernel+initramfs with a blank data disk and a repo served from
// this host, checks the commit is applied, reboots through the API and
// checks the history survived with the repo unreachable, then boots the
// ISO with no disk and checks the API answers from RAM.
func TestApplianceImage(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "apt-get", "dpkg", "grub-mkimage", "xorriso", "mformat", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; run test/setup.sh (it installs the appliance build and boot tools)", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()

	// The image, twice.
	berth := filepath.Join(tmp, "berth")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=e2e", "-o", berth, "./cmd/berth")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var results [2]*appliance.Result
	for i := range results {
		start := time.Now()
		results[i], err = appliance.Build(appliance.Config{Berth: berth, OutDir: filepath.Join(tmp, fmt.Sprint("img", i)),
			CacheDir: filepath.Join(root, "out/cache/debs"), Epoch: 1700000000})
		if err != nil {
			t.Fatalf("build %d: %v", i+1, err)
		}
		t.Logf("build %d: %s", i+1, time.Since(start).Round(time.Second))
	}
	img := results[0]
	for _, pair := range [][2]string{{img.Kernel, results[1].Kernel}, {img.Initramfs, results[1].Initramfs}, {img.ISO, results[1].ISO}} {
		a, _ := os.ReadFile(pair[0])
		b, _ := os.ReadFile(pair[1])
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: two builds from the same inputs differ (%d vs %d bytes)", filepath.Base(pair[0]), len(a), len(b))
		}
	}
	for _, p := range []string{img.Initramfs, img.ISO} {
		fi, _ := os.Stat(p)
		t.Logf("size %s: %.1f MB", filepath.Base(p), float64(fi.Size())/1e6)
		if fi.Size() > 40e6 {
			t.Errorf("%s is %.1f MB; the goal is under 40 MB", filepath.Base(p), float64(fi.Size())/1e6)
		}
	}

	// The config repo, served over smart HTTP by git itself.
	repo := filepath.Join(tmp, "git", "config.git")
	commit := makeRepo(t, filepath.Join(root, "examples/hello"), repo)
	var repoDown atomic.Bool
	var fetches atomic.Int32
	gitPath, _ := exec.LookPath("git")
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo), "GIT_HTTP_EXPORT_ALL=1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if repoDown.Load() {
			http.Error(w, "repo switched off by the test", http.StatusServiceUnavailable)
			return
		}
		fetches.Add(1)
		backend.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	// qemu's user-mode network shows the host's loopback as 10.0.2.2.
	repoURL := fmt.Sprintf("http://10.0.2.2:%d/config.git", ln.Addr().(*net.TCPAddr).Port)

	disk := filepath.Join(tmp, "data.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 1<<30); err != nil {
		t.Fatal(err)
	}
	cmdline := "console=ttyS0,115200n8 panic=-1 berth.bootstrap=1 berth.repo=" + repoURL + " berth.branch=main berth.poll=5s berth.token=" + applianceTok
	kernelArgs := []string{"-kernel", img.Kernel, "-initrd", img.Initramfs, "-append", cmdline,
		"-drive", "file=" + disk + ",format=raw,if=virtio"}

	// Boot 1: blank disk, repo reachable.
	vm := startVM(t, tmp, "boot1", kernelArgs)
	ready := vm.waitReady(t)
	t.Logf("boot 1 (kernel+initramfs, blank disk formatted): /readyz after %s", ready.Round(100*time.Millisecond))
	var revs []api.RevisionSummary
	waitFor(t, vm, syncTimeout, "commit "+commit[:12]+" applied", func() bool {
		revs = nil
		return vm.get("/v1/revisions", &revs) == nil && len(revs) > 0 && revs[0].Commit == commit && revs[0].Status == "applied"
	})
	var st1 api.Status
	if err := vm.get("/v1/status", &st1); err != nil {
		t.Fatal(err)
	}
	if st1.Host == nil || st1.Host.Storage != "disk" || st1.Commit != commit {
		t.Fatalf("boot 1 status: %+v host %+v", st1, st1.Host)
	}
	vm.post(t, "/v1/system/reboot")
	vm.waitExit(t) // -no-reboot: the guest's reboot ends qemu

	// Boot 2: same disk, repo unreachable: the history must come from disk.
	// A config disk (FAT, label BERTHCFG) now supplies the admin token and
	// a static address instead of the command line and DHCP.
	repoDown.Store(true)
	fetchesBefore := fetches.Load()
	cfgDisk := filepath.Join(tmp, "config.img")
	masterYAML := filepath.Join(tmp, "master.yaml")
	if err := os.WriteFile(masterYAML, []byte("token: "+configToken+"\nip: 10.0.2.15/24,10.0.2.2,10.0.2.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{{"mformat", "-C", "-i", cfgDisk, "-f", "1440", "-v", "BERTHCFG", "::"}, {"mcopy", "-i", cfgDisk, masterYAML, "::/master.yaml"}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	boot2 := []string{"-kernel", img.Kernel, "-initrd", img.Initramfs, "-append", strings.Replace(cmdline, " berth.token="+applianceTok, "", 1),
		"-drive", "file=" + disk + ",format=raw,if=virtio", "-drive", "file=" + cfgDisk + ",format=raw,if=virtio"}
	vm = startVM(t, tmp, "boot2", boot2)
	vm.token = configToken
	ready = vm.waitReady(t)
	t.Logf("boot 2 (same disk): /readyz after %s", ready.Round(100*time.Millisecond))
	var st2 api.Status
	waitFor(t, vm, time.Minute, "status after reboot", func() bool { return vm.get("/v1/status", &st2) == nil })
	revs = nil
	if err := vm.get("/v1/revisions", &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0].Commit != commit || revs[0].Status != "applied" {
		t.Fatalf("after reboot the revision history is %+v; want the one applied commit %s", revs, commit)
	}
	if st2.Commit != commit || st2.Index < st1.Index || st2.Host == nil || st2.Host.Storage != "disk" {
		t.Fatalf("after reboot: status %+v (before: index %d)", st2, st1.Index)
	}
	if c := vm.console(); !strings.Contains(c, "config disk") || !strings.Contains(c, "static address") {
		t.Errorf("boot 2 did not report reading the config disk and setting the static address")
	}
	if n := fetches.Load() - fetchesBefore; n != 0 {
		t.Fatalf("the repo answered %d fetches while switched off", n)
	}
	vm.post(t, "/v1/system/poweroff")
	vm.waitExit(t)

	// Boot 3: the ISO (BIOS, through GRUB), no disk: RAM mode, no repo.
	vm = startVM(t, tmp, "iso", []string{"-cdrom", img.ISO, "-boot", "d"})
	ready = vm.waitReady(t)
	t.Logf("boot 3 (ISO, no disk): /readyz after %s", ready.Round(100*time.Millisecond))
	token := vm.consoleToken(t)
	vm.token = token
	var st3 api.Status
	waitFor(t, vm, time.Minute, "status from the ISO boot", func() bool { return vm.get("/v1/status", &st3) == nil })
	if st3.Sync.State != "no-repo" || st3.Host == nil || st3.Host.Storage != "ram" {
		t.Fatalf("ISO boot status: %+v host %+v; want no-repo and ram", st3, st3.Host)
	}
	if !strings.Contains(vm.console(), "RUNNING FROM RAM") {
		t.Errorf("RAM mode is not announced on the console")
	}
	vm.post(t, "/v1/system/poweroff")
	vm.waitExit(t)
}

// makeRepo makes a bare repo at dir with one commit of src's files on
// main, and returns the commit hash.
func makeRepo(t *testing.T, src, bare string) string {
	t.Helper()
	work := bare + ".work"
	if err := os.CopyFS(work, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	env := []string{"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e",
		"GIT_COMMITTER_EMAIL=e2e@example.com", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z"}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "hello"},
		{"clone", "-q", "--bare", ".", bare}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command("git", "-C", bare, "rev-parse", "main").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

type vm struct {
	cmd     *exec.Cmd
	serial  string
	base    string
	token   string
	started time.Time
	exited  chan struct{}
	err     error
}

func startVM(t *testing.T, dir, name string, args []string) *vm {
	t.Helper()
	addr := harness.FreeAddr(t, "127.0.0.1")
	_, port, _ := net.SplitHostPort(addr)
	v := &vm{serial: filepath.Join(dir, name+".serial"), base: "https://" + addr,
		token: applianceTok, exited: make(chan struct{})}
	full := append([]string{"-m", "1024", "-smp", "1", "-display", "none", "-monitor", "none",
		"-serial", "file:" + v.serial, "-no-reboot", "-device", "virtio-rng-pci",
		"-nic", fmt.Sprintf("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:%s-:7443", port)}, args...)
	v.cmd = exec.Command("qemu-system-x86_64", full...)
	var stderr bytes.Buffer
	v.cmd.Stderr = &stderr
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		v.err = v.cmd.Wait()
		if v.err != nil {
			v.err = fmt.Errorf("%v: %s", v.err, stderr.Bytes())
		}
		close(v.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-v.exited:
		default:
			v.cmd.Process.Kill()
			<-v.exited
		}
		if t.Failed() {
			t.Logf("%s console (last 4 KB):\n%s", name, tail(v.console(), 4096))
		}
	})
	return v
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func (v *vm) console() string {
	b, _ := os.ReadFile(v.serial)
	return strings.ReplaceAll(ansi.ReplaceAllString(string(b), ""), "\r", "")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitReady polls /readyz and returns the time since qemu started.
func (v *vm) waitReady(t *testing.T) time.Duration {
	t.Helper()
	waitFor(t, v, bootTimeout, "/readyz", func() bool {
		// A health probe, as the kubelet's: no secret is sent, so the
		// certificate (checked for every call below) need not be yet.
		probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := probe.Get(v.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return time.Since(v.started)
}

func waitFor(t *testing.T, v *vm, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		select {
		case <-v.exited:
			t.Fatalf("waiting for %s: qemu exited: %v", what, v.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, timeout)
		}
		time.Sleep(time.Second)
	}
}

func (v *vm) get(path string, out any) error {
	req, _ := http.NewRequest("GET", v.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+v.token)
	c, err := v.client()
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}

func (v *vm) post(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", v.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+v.token)
	c, err := v.client()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", path, resp.Status, b)
	}
}

func (v *vm) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-v.exited:
	case <-time.After(downTimeout):
		t.Fatalf("the guest did not go down within %s", downTimeout)
	}
}

var (
	tokenLine = regexp.MustCompile(`(?m)^\s*token\s+([a-z0-9]{6}\.[a-z0-9]{16})\s*$`)
	caLine    = regexp.MustCompile(`(?m)^\s*ca\s+(sha256:[0-9a-f]{64})\s*$`)
)

// client trusts only the CA whose fingerprint the guest's console shows,
// as an operator pins it (berth agent --ca-hash).
func (v *vm) client() (*http.Client, error) {
	m := caLine.FindStringSubmatch(v.console())
	if m == nil {
		return nil, errors.New("no CA fingerprint on the console yet")
	}
	tc, err := pki.PinnedTLS(m[1])
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

// consoleToken reads the generated admin token off the status screen:
// with no token configured, that is the only place it is shown.
func (v *vm) consoleToken(t *testing.T) string {
	t.Helper()
	var m []string
	waitFor(t, v, time.Minute, "the admin token on the console", func() bool {
		m = tokenLine.FindStringSubmatch(v.console())
		return m != nil
	})
	return m[1]
}
