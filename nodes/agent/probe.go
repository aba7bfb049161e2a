package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berth/berth/schemas/objects"
)

// ExecFunc runs a command in a container and returns its exit code.
type ExecFunc func(ctx context.Context, cmd []string) (int, error)

// probeOnce runs one probe against a container at ip: an HTTP GET that
// answers 200-399, a TCP connect, or a command that exits 0, each within
// timeoutSeconds.
func probeOnce(ctx context.Context, p *objects.Probe, ip string, ports []objects.ContainerPort, exec ExecFunc) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(p.TimeoutSeconds)*time.Second)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		port, err := resolvePort(p.HTTPGet.Port, ports)
		if err != nil {
			return err
		}
		url := fmt.Sprintf("%s://%s%s", map[string]string{"HTTP": "http", "HTTPS": "https"}[p.HTTPGet.Scheme],
			net.JoinHostPort(ip, strconv.Itoa(port)), p.HTTPGet.Path)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "berth-probe")
		for _, h := range p.HTTPGet.HTTPHeaders {
			req.Header.Set(h.Name, h.Value)
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, ports)
		if err != nil {
			return err
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.Exec != nil:
		code, err := exec(ctx, p.Exec.Command)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command %v exited with %d", p.Exec.Command, code)
		}
		return nil
	}
	return fmt.Errorf("probe has no handler")
}

// probeClient does not follow redirects to other hosts' ports, and skips
// certificate checks for HTTPS as the kubelet does.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: insecureTLS()}}

func resolvePort(v objects.IntOrString, ports []objects.ContainerPort) (int, error) {
	if !v.IsString {
		return int(v.Int), nil
	}
	for _, p := range ports {
		if p.Name == v.Str {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("no container port named %q", v.Str)
}

// probeState tracks one probe of one container.
type probeState struct {
	probe   *objects.Probe
	ok      bool // current result
	streak  int  // consecutive results opposite to ok
	next    time.Time
	lastErr error
}

// newProbeState starts readiness as failing and liveness as passing, both
// first run after initialDelaySeconds.
func newProbeState(p *objects.Probe, initial bool, started time.Time) *probeState {
	return &probeState{probe: p, ok: initial, next: started.Add(time.Duration(p.InitialDelaySeconds) * time.Second)}
}

// due reports whether the probe should run at now.
func (s *probeState) due(now time.Time) bool { return !now.Before(s.next) }

// record takes one outcome and reports whether the result flipped: it
// takes successThreshold successes in a row to pass and failureThreshold
// failures in a row to fail.
func (s *probeState) record(now time.Time, err error) bool {
	s.next = now.Add(time.Duration(s.probe.PeriodSeconds) * time.Second)
	s.lastErr = err
	success := err == nil
	if success == s.ok {
		s.streak = 0
		return false
	}
	s.streak++
	need := int(s.probe.FailureThreshold)
	if success {
		need = int(s.probe.SuccessThreshold)
	}
	if s.streak >= need {
		s.ok, s.streak = success, 0
		return true
	}
	return false
}
