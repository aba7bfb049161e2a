package action

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/berth/berth/schemas/objects"
)

// Each action against a real server on loopback: HTTP by a named port,
// TCP, a command's exit code, and a sleep that ends with its context.
func TestRun(t *testing.T) {
	healthy := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy || r.URL.Path != "/healthz" || r.Header.Get("X-Probe") != "1" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(portStr)
	target := Target{IP: host, Ports: []objects.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		Exec: func(_ context.Context, cmd []string) (int, error) { return len(cmd) - 1, nil }}
	ctx := context.Background()
	get := &objects.Handler{HTTPGet: &objects.HTTPGetAction{Path: "/healthz", Port: objects.IntOrString{IsString: true, Str: "http"}, Scheme: "HTTP",
		HTTPHeaders: []objects.HTTPHeader{{Name: "X-Probe", Value: "1"}}}}
	if err := Run(ctx, get, target); err != nil {
		t.Fatal(err)
	}
	healthy = false
	if err := Run(ctx, get, target); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("unhealthy: %v", err)
	}
	tcp := &objects.Handler{TCPSocket: &objects.TCPSocketAction{Port: objects.IntOrString{Int: int32(port)}}}
	if err := Run(ctx, tcp, target); err != nil {
		t.Fatal(err)
	}
	if err := Run(ctx, &objects.Handler{Exec: &objects.ExecAction{Command: []string{"ok"}}}, target); err != nil {
		t.Fatalf("exit 0: %v", err)
	}
	if err := Run(ctx, &objects.Handler{Exec: &objects.ExecAction{Command: []string{"exit", "1"}}}, target); err == nil {
		t.Fatal("a command exiting 1 passed")
	}
	srv.Close()
	if err := Run(ctx, tcp, target); err == nil {
		t.Fatal("a TCP connect to a closed port passed")
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := Run(short, &objects.Handler{Sleep: &objects.SleepAction{Seconds: 30}}, target); err != context.DeadlineExceeded {
		t.Fatalf("a sleep past its context: %v", err)
	}
}

// The gRPC action speaks the standard grpc.health.v1 protocol to a real
// server: SERVING passes, NOT_SERVING and an unknown service fail.
func TestRunGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := health.NewServer()
	hs.SetServingStatus("shop", healthpb.HealthCheckResponse_NOT_SERVING)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	defer srv.Stop()
	target := Target{IP: "127.0.0.1"}
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Run(ctx, &objects.Handler{GRPC: &objects.GRPCAction{Port: port}}, target); err != nil {
		t.Fatalf("server SERVING: %v", err)
	}
	if err := Run(ctx, &objects.Handler{GRPC: &objects.GRPCAction{Port: port, Service: "shop"}}, target); err == nil || !strings.Contains(err.Error(), "NOT_SERVING") {
		t.Fatalf("service NOT_SERVING: %v", err)
	}
	if err := Run(ctx, &objects.Handler{GRPC: &objects.GRPCAction{Port: port, Service: "nope"}}, target); err == nil {
		t.Fatal("an unknown service passed")
	}
}
