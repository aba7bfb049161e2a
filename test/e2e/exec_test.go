package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/test/harness"
)

// TestExecPortForwardTop: on an agent in a network namespace of its own,
// with real containerd, through the berth binary as a person runs it:
// exec returns a command's output and exit code, feeds it stdin, runs it
// on a terminal (this test's pty) that follows resizes, and kills it when
// its client goes away; a read-only token may not exec. port-forward reaches the pod's HTTP server from
// 127.0.0.1, by pod and by Service; top shows the pod's memory.
func TestExecPortForwardTop(t *testing.T) {
	n := env.NewNodeNet(t, fmt.Sprintf("bex%d", os.Getpid()%10000), "10.243.0")
	n.AddAgent("n1")
	n.ReadyNodes(1, time.Minute)
	n.Commit(map[string]string{"web.yaml": n.Deployment("web", 1) +
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: apps}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n"})
	n.ReadyPods("web", 1, "", 3*time.Minute)
	pods := n.Master.Client(n.Master.AdminToken())
	all, _, err := pods.Pods(context.Background(), "n1", nil)
	if err != nil || len(all) != 1 {
		t.Fatalf("pods: %v %v", all, err)
	}
	pod := "apps/" + all[0].Name
	config := filepath.Join(n.Master.Data, "admin.conf")
	berth := func(stdin io.Reader, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, env.Bin, append([]string{"--config", config}, args...)...)
		var o, e bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("berth %v: %v", args, err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}

	t.Run("exec", func(t *testing.T) {
		out, errOut, code := berth(nil, "exec", pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		if out != "out\n" || errOut != "err\n" || code != 3 {
			t.Errorf("exec: stdout %q, stderr %q, exit %d; want out, err, 3", out, errOut, code)
		}
		out, errOut, code = berth(strings.NewReader("hello\nworld\n"), "exec", "-i", pod, "-c", "hello", "--", "sh", "-c", "wc -l; cat /etc/hostname")
		if strings.Fields(out)[0] != "2" || !strings.Contains(out, all[0].Name) || code != 0 {
			t.Errorf("exec -i: stdout %q, stderr %q, exit %d; want 2 lines counted and the pod's hostname", out, errOut, code)
		}
		if _, errOut, code = berth(nil, "exec", pod, "--", "/no/such/binary"); code != 1 || !strings.Contains(errOut, "could not start") {
			t.Errorf("exec of a missing binary: stderr %q, exit %d; want why, and 1", errOut, code)
		}
		if _, errOut, code = berth(nil, "exec", pod, "-c", "nope", "--", "true"); code != 1 || !strings.Contains(errOut, `container "nope" is not valid`) {
			t.Errorf("exec in a missing container: stderr %q, exit %d", errOut, code)
		}
		// A client that goes away takes its command with it.
		sleeper := exec.Command(env.Bin, "--config", config, "exec", pod, "--", "sleep", "4242")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		sleeping := func() bool {
			out, _, _ := berth(nil, "exec", pod, "--", "ps")
			return strings.Contains(out, "sleep 4242")
		}
		harness.Eventually(t, "the exec'd sleep running", 20*time.Second, func() error {
			if !sleeping() {
				return errors.New("not in ps")
			}
			return nil
		})
		sleeper.Process.Kill()
		sleeper.Wait()
		harness.Eventually(t, "the exec'd sleep gone with its client", 20*time.Second, func() error {
			if sleeping() {
				return errors.New("still in ps")
			}
			return nil
		})

		ro := n.Master.Client(n.Master.CreateToken("--role", "read-only"))
		if _, err := ro.Exec(context.Background(), "apps", all[0].Name, api.ExecOptions{Command: []string{"true"}}, api.ExecStreams{}); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("read-only exec: %v, want 403", err)
		}
	})

	t.Run("tty", func(t *testing.T) {
		cmd := exec.Command(env.Bin, "--config", config, "exec", "-it", pod, "--", "sh")
		term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
		if err != nil {
			t.Fatal(err)
		}
		defer term.Close()
		var mu sync.Mutex
		var screen bytes.Buffer
		go func() {
			r := bufio.NewReader(term)
			for {
				b, err := r.ReadByte()
				if err != nil {
					return
				}
				mu.Lock()
				screen.WriteByte(b)
				mu.Unlock()
			}
		}()
		seen := func(what string, re *regexp.Regexp, send string) {
			t.Helper()
			harness.Eventually(t, what, 20*time.Second, func() error {
				mu.Lock()
				s := screen.String()
				mu.Unlock()
				if re.MatchString(s) {
					return nil
				}
				io.WriteString(term, send)
				return fmt.Errorf("screen so far: %q", s[max(0, len(s)-300):])
			})
		}
		// A terminal in the container, of this terminal's size: the
		// shell echoes what is typed, and stty reads the size.
		seen("the size on the remote terminal", regexp.MustCompile(`(?m)^30 100\r?$`), "tty; stty size\r")
		if !regexp.MustCompile(`/dev/pts/\d+`).MatchString(screen.String()) {
			t.Errorf("the command runs on no terminal: %q", screen.String())
		}
		if err := pty.Setsize(term, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
			t.Fatal(err)
		}
		seen("the new size after a resize", regexp.MustCompile(`(?m)^40 120\r?$`), "stty size\r")
		io.WriteString(term, "exit 5\r")
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatal("berth exec -it did not end with the shell")
		}
		if code := cmd.ProcessState.ExitCode(); code != 5 {
			t.Errorf("exec -it: exit %d, want the shell's 5", code)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		for _, target := range []string{"pod/" + all[0].Name + " :8080", "svc/web :80", "svc/web :http"} {
			target, port, _ := strings.Cut(target, " ")
			cmd := exec.Command(env.Bin, "--config", config, "port-forward", "-n", "apps", target, port)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			m := regexp.MustCompile(`^Forwarding from (127\.0\.0\.1:\d+) -> 8080\n$`).FindStringSubmatch(line)
			if m == nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("port-forward %s %s: %q %v; stderr %q", target, port, line, err, stderr.String())
			}
			// Two requests: each connection is a stream of its own.
			for range 2 {
				if body, err := harness.Ask("http://" + m[1] + "/"); err != nil || strings.Fields(body + " x")[0] != all[0].Name {
					t.Errorf("port-forward %s %s: GET / answered %q %v; stderr %q", target, port, body, err, stderr.String())
				}
			}
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
		if _, errOut, code := berth(nil, "port-forward", "-n", "apps", "svc/web", ":9999"); code != 1 || !strings.Contains(errOut, "no port 9999") {
			t.Errorf("port-forward to a port the Service lacks: %q, exit %d", errOut, code)
		}
		ro := n.Master.Client(n.Master.CreateToken("--role", "read-only"))
		if _, err := ro.PortForward(context.Background(), "apps", all[0].Name, 8080); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("read-only port-forward: %v, want 403", err)
		}
	})

	t.Run("top", func(t *testing.T) {
		out, errOut, code := berth(nil, "top", "pods", "-n", "apps")
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(all[0].Name) + `\s+(\d+)m\s+(\d+)Mi\s*$`).FindStringSubmatch(out)
		if code != 0 || m == nil || m[2] == "0" {
			t.Errorf("top pods: %q %q, exit %d; want the pod with its memory", out, errOut, code)
		}
		out, errOut, code = berth(nil, "top", "nodes")
		if code != 0 || !regexp.MustCompile(`(?m)^n1\s+\d+m\s+\d+%\s+[1-9]\d*Mi\s+\d+%\s*$`).MatchString(out) {
			t.Errorf("top nodes: %q %q, exit %d", out, errOut, code)
		}
	})
}
