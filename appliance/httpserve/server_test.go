package httpserve

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/pki"
)

// short are limits small enough for tests to see them act.
var short = Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond,
	WriteTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, PerAddress: 8}

// serve runs h under l over real TLS on loopback and returns its address
// and a client configuration trusting it.
func serve(t *testing.T, h http.Handler, l Limits) (string, *tls.Config) {
	t.Helper()
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer("server", nil, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := pki.ServerTLS(ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, tc, slog.New(slog.DiscardHandler), l)
	done := make(chan error, 1)
	go func() { done <- s.ServeTLS(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	return ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// closedWithin reads c until the server closes it, failing after d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s", d)
	}
}

// Slow headers, slow bodies and idle keep-alive connections are closed
// after the timeouts.
func TestTimeoutsCloseConnections(t *testing.T) {
	addr, tc := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}), short)
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", addr, tc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("headers", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		closedWithin(t, c, 3*time.Second)
	})
	t.Run("body", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
		closedWithin(t, c, 3*time.Second)
	})
	t.Run("idle", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.Close {
			t.Fatal("the server closed a keep-alive connection at once")
		}
		closedWithin(t, c, 3*time.Second)
	})
	t.Run("handshake", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		closedWithin(t, c, 3*time.Second)
	})
}

// A blocking query that waits longer than the timeouts, with Hold, gets its
// answer and keeps its context; without Hold it would lose both.
func TestHoldOutlastsTimeouts(t *testing.T) {
	const wait = 700 * time.Millisecond // over ReadTimeout and WriteTimeout
	for _, hold := range []bool{true, false} {
		cancelled := make(chan bool, 1)
		addr, tc := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hold {
				Hold(w, r, wait)
			}
			select {
			case <-time.After(wait):
				cancelled <- false
			case <-r.Context().Done():
				cancelled <- true
			}
			io.WriteString(w, "answer")
		}), short)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := client.Get("https://" + addr + "/")
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		gotCancelled := <-cancelled
		if hold && (err != nil || string(body) != "answer" || gotCancelled) {
			t.Errorf("with Hold: body %q, err %v, context cancelled %v", body, err, gotCancelled)
		}
		if !hold && err == nil && !gotCancelled {
			t.Errorf("without Hold the timeouts did not act (body %q): the test shows nothing", body)
		}
	}
}

// A stream that keeps writing outlasts the write timeout with Stream, and
// a stream that stops being read is cut.
func TestStreamWritesAsLongAsItProgresses(t *testing.T) {
	addr, tc := serve(t, Streaming(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 10 {
			if _, err := io.WriteString(w, strings.Repeat("x", 10)+"\n"); err != nil {
				return
			}
			rc.Flush()
			if i < 9 {
				time.Sleep(100 * time.Millisecond) // 1 s in all, over WriteTimeout
			}
		}
	})), short)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Count(string(b), "\n") != 10 {
		t.Fatalf("stream: %d lines, %v", strings.Count(string(b), "\n"), err)
	}

	// A reader that stops: the writes block once the socket buffers fill,
	// and the rolling deadline cuts the stream.
	ended := make(chan error, 1)
	addr, tc = serve(t, Streaming(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("y", 64<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				ended <- err
				return
			}
		}
	})), short)
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-ended:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("stalled stream ended with %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stream nobody reads was not cut")
	}
}
