// Package serve runs the HTTP servers of the example images as a pod
// expects them to run: on :$PORT (8080 by default) until SIGTERM, then a
// graceful shutdown and exit 0, so a graceful stop is told apart from a
// crash.
package serve

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// PodName is $POD_NAME, or else the hostname, which the runtime sets to
// the pod's name.
func PodName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
}

// Run serves h until SIGTERM or SIGINT and exits 1 if it cannot. prog
// names the program in its log lines; attrs are logged with "listening".
func Run(prog string, h http.Handler, attrs ...any) {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	srv := &http.Server{Addr: ":" + port, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info(prog+": listening", append([]any{"addr", srv.Addr}, attrs...)...)

	select {
	case err := <-errc:
		slog.Error(prog+": serve", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	slog.Info(prog + ": shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Error(prog+": shutdown", "err", err)
	}
}
