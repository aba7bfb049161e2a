// Command hello is the tiny HTTP server that berth's tests and examples run
// in containers. GET / answers "<pod name> <version>\n" so a test can tell
// which pod and which rollout served a request; GET /client answers
// "<pod name> <client address>\n", the address the connection came from
// (to tell a kept client address from a masqueraded one); GET /healthz
// answers 200 for probes; /lookup, /srv, /dial and /env answer what the
// pod resolves, reaches and has in its environment. With GRPC_HEALTH_PORT
// set it also serves the standard grpc.health.v1 service there, answering
// GRPC_HEALTH_STATUS (SERVING by default), for gRPC probes. It is built
// static (CGO_ENABLED=0) so the image needs no libc.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/berth/berth/images/internal/serve"
)

func main() {
	name, version := serve.PodName(), os.Getenv("VERSION")
	if port := os.Getenv("GRPC_HEALTH_PORT"); port != "" {
		go func() {
			err := serveHealth(port, os.Getenv("GRPC_HEALTH_STATUS"))
			slog.Error("hello: gRPC health", "err", err)
			os.Exit(1)
		}()
	}
	serve.Run("hello", newHandler(name, version), "name", name, "version", version)
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
	// /readyz answers 200 until GET /unready, for a readiness probe a test
	// can fail.
	var unready atomic.Bool
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if unready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /unready", func(w http.ResponseWriter, r *http.Request) {
		unready.Store(true)
		fmt.Fprintln(w, "ok")
	})
	// What tests ask from inside a pod, through its resolv.conf: the
	// addresses of a name, its SRV records, a GET by name, a variable.
	mux.HandleFunc("GET /lookup", func(w http.ResponseWriter, r *http.Request) {
		addrs, err := net.DefaultResolver.LookupHost(r.Context(), r.FormValue("name"))
		answer(w, err, addrs)
	})
	mux.HandleFunc("GET /srv", func(w http.ResponseWriter, r *http.Request) {
		_, srvs, err := net.DefaultResolver.LookupSRV(r.Context(), r.FormValue("service"), r.FormValue("proto"), r.FormValue("name"))
		var out []string
		for _, s := range srvs {
			out = append(out, fmt.Sprintf("%s:%d", s.Target, s.Port))
		}
		answer(w, err, out)
	})
	mux.HandleFunc("GET /dial", func(w http.ResponseWriter, r *http.Request) {
		resp, err := dialClient.Get("http://" + r.FormValue("addr") + "/")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, os.Getenv(r.FormValue("name")))
	})
	return mux
}

var dialClient = &http.Client{Timeout: 5 * time.Second}

// answer writes the lines sorted, 404 for a name that does not exist, 502
// for any other failure.
func answer(w http.ResponseWriter, err error, lines []string) {
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
	default:
		slices.Sort(lines)
		fmt.Fprintln(w, strings.Join(lines, " "))
	}
}
