// Package action runs what a probe checks or a lifecycle hook does against
// one container: an HTTP GET, a TCP connect, a command inside it, a gRPC
// health check, or a pause. The agent's probes and the runtime's hooks
// share it, as the kubelet's prober and lifecycle handlers do.
package action

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/berth/berth/schemas/objects"
)

// Target is the container an action runs against.
type Target struct {
	IP    string
	Ports []objects.ContainerPort
	// Exec runs a command in the container and returns its exit code.
	Exec func(ctx context.Context, cmd []string) (int, error)
}

// Run does h against t until ctx ends: an HTTP GET that answers 200-399,
// a TCP connect, a command that exits 0, a gRPC health check that answers
// SERVING, or a sleep; anything else is the error returned.
func Run(ctx context.Context, h *objects.Handler, t Target) error {
	switch {
	case h.HTTPGet != nil:
		return httpGet(ctx, h.HTTPGet, t)
	case h.TCPSocket != nil:
		port, err := resolvePort(h.TCPSocket.Port, t.Ports)
		if err != nil {
			return err
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(t.IP, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case h.Exec != nil:
		code, err := t.Exec(ctx, h.Exec.Command)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command %v exited with %d", h.Exec.Command, code)
		}
		return nil
	case h.GRPC != nil:
		return grpcHealth(ctx, h.GRPC, t)
	case h.Sleep != nil:
		timer := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer timer.Stop()
		select {
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("no action to run")
}

func httpGet(ctx context.Context, g *objects.HTTPGetAction, t Target) error {
	port, err := resolvePort(g.Port, t.Ports)
	if err != nil {
		return err
	}
	scheme := "http"
	if g.Scheme == "HTTPS" {
		scheme = "https"
	}
	url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(t.IP, strconv.Itoa(port)), g.Path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "berth-probe")
	for _, hd := range g.HTTPHeaders {
		req.Header.Set(hd.Name, hd.Value)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// client skips certificate checks for HTTPS, as the kubelet does: the
// container's certificate names no pod IP.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // as the kubelet's probes

// grpcHealth asks the container's grpc.health.v1 service, as the kubelet's
// gRPC probe does: plain text, the named service or the server as a whole.
func grpcHealth(ctx context.Context, g *objects.GRPCAction, t Target) error {
	conn, err := grpc.DialContext(ctx, net.JoinHostPort(t.IP, strconv.Itoa(int(g.Port))),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent("berth-probe"))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: g.Service})
	if err != nil {
		return fmt.Errorf("gRPC health check: %w", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC health check: service is %s", resp.Status)
	}
	return nil
}

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
