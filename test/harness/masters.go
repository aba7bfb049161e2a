package harness

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/pki"
)

// Master is one `berth master` process.
type Master struct {
	t    testing.TB
	env  *Env
	Name string
	Data string
	URL  string
	// Raft is the Raft listen address.
	Raft   string
	args   []string
	netns  string // run inside this network namespace, if set
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// MasterOptions place a master: its API and Raft addresses, and the
// network namespace it runs in ("" for the test's own).
type MasterOptions struct {
	Listen, RaftListen string
	NetNS              string
	Extra              []string
}

// NewMaster prepares a master named name with a data dir of its own; Start
// runs it with the flags given then (bootstrap or join).
func (env *Env) NewMaster(t testing.TB, name string, o MasterOptions) *Master {
	m := &Master{t: t, env: env, Name: name, Data: filepath.Join(t.TempDir(), name), URL: "https://" + o.Listen, Raft: o.RaftListen, netns: o.NetNS}
	m.args = append([]string{"master", "--name", name, "--data", m.Data, "--listen", o.Listen, "--raft-listen", o.RaftListen}, o.Extra...)
	if slices.Contains(o.Extra, "--repo") {
		m.args = append(m.args, "--webhook-secret-file", webhookSecretFile(t, t.TempDir()))
	}
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("master %s, last lines of its log:\n%s", name, m.LogTail(4000))
		}
	})
	return m
}

// Start runs the master with extra flags (e.g. --bootstrap) and waits for
// its API to answer /readyz.
func (m *Master) Start(extra ...string) {
	m.t.Helper()
	if err := m.StartNoWait(extra...); err != nil {
		m.t.Fatal(err)
	}
	m.WaitReady(time.Minute)
}

// StartNoWait runs the master and returns at once.
func (m *Master) StartNoWait(extra ...string) error {
	os.MkdirAll(m.Data, 0o700)
	log, err := os.OpenFile(m.Data+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	args := append(append([]string{}, m.args...), extra...)
	if m.netns != "" {
		m.cmd = exec.Command("ip", append([]string{"netns", "exec", m.netns, m.env.Bin}, args...)...)
	} else {
		m.cmd = exec.Command(m.env.Bin, args...)
	}
	m.cmd.Stdout, m.cmd.Stderr = log, log
	if err := m.cmd.Start(); err != nil {
		return err
	}
	m.exited = make(chan struct{})
	go func() { m.err = m.cmd.Wait(); close(m.exited) }()
	return nil
}

// Wait waits for the process to exit and returns its error.
func (m *Master) Wait(timeout time.Duration) error {
	select {
	case <-m.exited:
		return m.err
	case <-time.After(timeout):
		return fmt.Errorf("master %s still runs after %s", m.Name, timeout)
	}
}

// WaitReady waits until the master answers /readyz (it has a leader).
func (m *Master) WaitReady(timeout time.Duration) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-m.exited:
			m.t.Fatalf("master %s exited: %v\n%s", m.Name, m.err, m.LogTail(3000))
		default:
		}
		if c, err := m.HTTP(); err == nil {
			if resp, err := c.Get(m.URL + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("master %s not ready within %s\n%s", m.Name, timeout, m.LogTail(3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill ends the master with SIGKILL, if it runs.
func (m *Master) Kill() {
	if m.cmd == nil || m.exited == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
}

// Stop ends the master with SIGTERM and waits.
func (m *Master) Stop() {
	m.t.Helper()
	m.cmd.Process.Signal(syscall.SIGTERM)
	if err := m.Wait(time.Minute); err != nil && !strings.Contains(err.Error(), "signal") {
		m.t.Fatalf("master %s: %v", m.Name, err)
	}
}

// LogTail is the end of the master's log.
func (m *Master) LogTail(n int) string {
	b, _ := os.ReadFile(m.Data + ".log")
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (m *Master) read(name string) []byte {
	b, err := os.ReadFile(filepath.Join(m.Data, name))
	if err != nil {
		m.t.Fatal(err)
	}
	return b
}

// CAHash is the fingerprint of the cluster CA this master trusts.
func (m *Master) CAHash() string {
	block, _ := pem.Decode(m.read("tls/ca.crt"))
	if block == nil {
		m.t.Fatalf("master %s has no CA certificate", m.Name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		m.t.Fatal(err)
	}
	return pki.Fingerprint(cert)
}

// JoinToken is a token from the bootstrapping master's data dir
// ("join-master" or "join-agent"). The master join token is good for one
// join: further masters need a token of their own (CreateToken).
func (m *Master) JoinToken(kind string) string {
	return strings.TrimSpace(string(m.read(kind + ".token")))
}

// CreateToken runs `berth token create ARGS` with the bootstrapping
// master's admin.conf, as an operator would, and returns the secret.
func (m *Master) CreateToken(args ...string) string {
	m.t.Helper()
	cmd := exec.Command(m.env.Bin, append([]string{"token", "create", "--config", filepath.Join(m.Data, "admin.conf")}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		m.t.Fatalf("berth token create %v: %v\n%s", args, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// HTTP trusts the cluster CA.
func (m *Master) HTTP() (*http.Client, error) {
	ca, err := os.ReadFile(filepath.Join(m.Data, "tls", "ca.crt"))
	if err != nil {
		return nil, err
	}
	tc, err := pki.ClientTLS(ca, nil, nil, pki.OrgMasters)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}, nil
}

// AdminToken is the bootstrapping master's admin token.
func (m *Master) AdminToken() string {
	var c struct{ Token string }
	if err := yaml.Unmarshal(m.read("admin.conf"), &c); err != nil {
		m.t.Fatal(err)
	}
	return c.Token
}

// Client talks to these masters only, in order, with token.
func (m *Master) Client(token string, servers ...*Master) *api.Client {
	m.t.Helper()
	h, err := m.HTTP()
	if err != nil {
		m.t.Fatal(err)
	}
	var urls []string
	for _, s := range append([]*Master{m}, servers...) {
		urls = append(urls, s.URL)
	}
	return api.NewClient(strings.Join(urls, ","), token, api.WithHTTPClient(h))
}

// Webhook pokes the master's push webhook, as a Git host would.
func (m *Master) Webhook(ctx context.Context) {
	h, err := m.HTTP()
	if err != nil {
		return
	}
	if resp, err := h.Do(webhookRequest(ctx, m.URL)); err == nil {
		resp.Body.Close()
	}
}
