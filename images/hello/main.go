// Command hello is the tiny HTTP server that berth's tests and examples run
// in containers. GET / answers "<pod name> <version>\n" so a test can tell
// which pod and which rollout served a request; GET /client answers
// "<pod name> <client address>\n", the address the connection came from
// (to tell a kept client address from a masqueraded one); GET /healthz
// answers 200 for probes. With GRPC_HEALTH_PORT set it also serves the
// standard grpc.health.v1 service there, answering GRPC_HEALTH_STATUS
// (SERVING by default), for gRPC probes. It is built static
// (CGO_ENABLED=0) so the image needs no libc.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	name := os.Getenv("POD_NAME")
	if name == "" {
		// The runtime sets the pod name as the container's hostname.
		name, _ = os.Hostname()
	}
	version := os.Getenv("VERSION")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv := &http.Server{Addr: ":" + port, Handler: newHandler(name, version), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("hello: listening", "addr", srv.Addr, "name", name, "version", version)
	if port := os.Getenv("GRPC_HEALTH_PORT"); port != "" {
		go func() { errc <- serveHealth(port, os.Getenv("GRPC_HEALTH_STATUS")) }()
	}

	select {
	case err := <-errc:
		slog.Error("hello: serve", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	// Exit 0 on SIGTERM so a graceful stop is told apart from a crash.
	slog.Info("hello: shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Error("hello: shutdown", "err", err)
	}
}

// serveHealth answers grpc.health.v1 checks of the server as a whole.
func serveHealth(port, status string) error {
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	hs := health.NewServer()
	if st, ok := healthpb.HealthCheckResponse_ServingStatus_value[status]; ok {
		hs.SetServingStatus("", healthpb.HealthCheckResponse_ServingStatus(st))
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	slog.Info("hello: gRPC health", "addr", ln.Addr(), "status", status)
	return srv.Serve(ln)
}

func newHandler(name, version string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", name, version)
	})
	mux.HandleFunc("GET /client", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s %s\n", name, host)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "ok")
	})
	return mux
}
