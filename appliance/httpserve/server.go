// Package httpserve builds the HTTP servers of masters and agents with the
// same bounds: header, body, write and idle timeouts, a header size cap and
// a cap on the connections one client address may hold open. Routes that
// legitimately last longer (blocking queries, followed logs, snapshots)
// lift the timeouts for their own response with Hold or Stream.
package httpserve

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits bound what one connection or client may hold.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers (and the TLS
	// handshake); ReadTimeout the whole request with its body.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of its request's
	// headers; Hold and Stream lift it per response.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	// PerAddress is how many connections one remote IP may have open.
	PerAddress int
}

// DefaultLimits fit the API: request bodies are JSON of at most 1 MiB,
// answers are small but for lists, and agents, masters and the CLI each
// hold a few connections.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      time.Minute,
	IdleTimeout:       2 * time.Minute,
	MaxHeaderBytes:    64 << 10,
	PerAddress:        64,
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&l.ReadHeaderTimeout, d.ReadHeaderTimeout}, {&l.ReadTimeout, d.ReadTimeout}, {&l.WriteTimeout, d.WriteTimeout}, {&l.IdleTimeout, d.IdleTimeout}} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.PerAddress <= 0 {
		l.PerAddress = d.PerAddress
	}
	return l
}

// Server is an HTTPS server with Limits.
type Server struct {
	srv     *http.Server
	limits  Limits
	refused *RefusalLog
}

// New returns a server of h over TLS with tc; zero fields of l take
// DefaultLimits. The server's own errors (failed handshakes) go to log at
// debug level.
func New(h http.Handler, tc *tls.Config, log *slog.Logger, l Limits) *Server {
	l = l.withDefaults()
	return &Server{
		srv: &http.Server{Handler: h, TLSConfig: tc,
			ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout, WriteTimeout: l.WriteTimeout,
			IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)},
		limits:  l,
		refused: &RefusalLog{Log: log, Msg: "connection refused: too many open from one address"},
	}
}

// ServeTLS serves ln until Shutdown; it returns http.ErrServerClosed then.
func (s *Server) ServeTLS(ln net.Listener) error {
	return s.srv.ServeTLS(limitPerAddress(ln, s.limits.PerAddress, s.refused), "", "")
}

// Shutdown stops accepting and waits for requests in flight, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// serverOf is the http.Server serving r, nil outside one (handler tests).
func serverOf(r *http.Request) *http.Server {
	s, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	return s
}

// Hold lets the response to r take up to d longer than the server's
// timeouts: a blocking query waits up to d before it answers. The read
// deadline moves too: net/http reads on in the background to see the client
// go away, and may end the request's context when that read times out.
func Hold(w http.ResponseWriter, r *http.Request, d time.Duration) {
	srv := serverOf(r)
	if srv == nil {
		return
	}
	rc := http.NewResponseController(w)
	now := time.Now()
	if srv.ReadTimeout > 0 {
		rc.SetReadDeadline(now.Add(d + srv.ReadTimeout))
	}
	if srv.WriteTimeout > 0 {
		rc.SetWriteDeadline(now.Add(d + srv.WriteTimeout))
	}
}

// Stream lifts the whole-request timeouts for a response that lasts as
// long as it makes progress (a followed log, a snapshot): each read of the
// body and each write of the response has the server's timeout anew. It
// replaces r.Body, returns the writer to use, and end, to call when the
// handler is done, which bounds what the server still does on the
// connection (reading the rest of a body) by the timeouts again.
func Stream(w http.ResponseWriter, r *http.Request) (_ http.ResponseWriter, end func()) {
	srv := serverOf(r)
	if srv == nil {
		return w, func() {}
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	end = func() {
		now := time.Now()
		if srv.ReadTimeout > 0 {
			rc.SetReadDeadline(now.Add(srv.ReadTimeout))
		}
		if srv.WriteTimeout > 0 {
			rc.SetWriteDeadline(now.Add(srv.WriteTimeout))
		}
	}
	if srv.ReadTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = &streamBody{ReadCloser: r.Body, rc: rc, d: srv.ReadTimeout}
	}
	if srv.WriteTimeout > 0 {
		w = &streamWriter{ResponseWriter: w, rc: rc, d: srv.WriteTimeout}
	}
	return w, end
}

// Streaming serves every request of h with Stream: for a server whose
// routes all stream (the agent's logs).
func Streaming(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w, end := Stream(w, r)
		defer end()
		h.ServeHTTP(w, r)
	})
}

// streamWriter gives each write the write timeout anew.
type streamWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's Flush.
func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// streamBody gives each read the read timeout anew, and lifts it at the end
// of the body: the server then waits on the connection only to see the
// client go away, which must not end the request.
type streamBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
