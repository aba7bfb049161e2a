package appliance

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/apiserver"
	"github.com/berth/berth/appliance/httpserve"
)

// abuseLimits are short, so that the test sees the timeouts act.
var abuseLimits = httpserve.Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
	WriteTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond, PerAddress: 16}

// abuseMaster is a real master with a repository and a webhook secret,
// serving with abuseLimits over TLS on loopback.
func abuseMaster(t *testing.T) *Master {
	t.Helper()
	repo := helloRepo(t)
	m, err := Start(context.Background(), Config{Name: "m0", DataDir: t.TempDir(), Listen: "127.0.0.1:0", RaftListen: freeAddr(t),
		Bootstrap: true, Repo: repo, Poll: time.Hour, WebhookSecret: []byte("hook"), HTTPLimits: abuseLimits,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// serverConns counts the connections the server at port holds open with a
// descriptor (established, or closed by the peer and not yet by us), from
// /proc/net/tcp: the client ends of this test are other sockets.
func serverConns(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		_, p, _ := strings.Cut(f[1], ":")
		lp, _ := strconv.ParseInt(p, 16, 32)
		if int(lp) == port && (f[3] == "01" || f[3] == "08") && f[9] != "0" {
			n++
		}
	}
	return n
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// peakHeap samples the heap until stop is called and returns the largest
// HeapAlloc seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAbuse attacks a real master's API with slow headers and bodies, many
// connections from one address, huge bodies and headers, odd paths and
// methods: every answer is a 4xx (never a 5xx), the connections it holds
// stay under the per-address cap and go away with the timeouts, and the
// heap stays small.
func TestAbuse(t *testing.T) {
	m := abuseMaster(t)
	u, _ := url.Parse(m.URL())
	port, _ := strconv.Atoi(u.Port())
	tc := m.HTTPClient().Transport.(*http.Transport).TLSClientConfig
	fdsBefore := openFDs(t)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc
	stopHeap := peakHeap()

	dial := func() *tls.Conn {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host, tc)
		if err != nil {
			// Refused at accept (over the cap): the handshake fails.
			return nil
		}
		return c
	}
	// status sends raw on a fresh connection and reads the answer's status
	// (0: the server closed the connection without one).
	status := func(raw string) int {
		t.Helper()
		c := dial()
		if c == nil {
			return 0
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Each phase starts once the server holds nothing: connections of the
	// one before count against the per-address cap until they time out.
	settle := func(t *testing.T) {
		t.Helper()
		waitFor(t, "the server's connections closed", 5*time.Second, func() bool { return serverConns(t, port) == 0 })
	}

	t.Run("slow headers and bodies, many connections", func(t *testing.T) {
		var conns []*tls.Conn
		for i := range 100 {
			c := dial()
			if c == nil {
				continue
			}
			conns = append(conns, c)
			if i%2 == 0 {
				io.WriteString(c, "GET /v1/nodes HTTP/1.1\r\nHost: x\r\nX-Slow: ") // headers never end
			} else {
				fmt.Fprintf(c, "POST /v1/webhook HTTP/1.1\r\nHost: x\r\n%s: sha256=00\r\nContent-Length: 1000000\r\n\r\n{", apiserver.BerthSignatureHeader)
			}
		}
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		if n := serverConns(t, port); n > abuseLimits.PerAddress {
			t.Errorf("the server holds %d connections from one address, over the cap %d", n, abuseLimits.PerAddress)
		}
		settle(t)
		for _, c := range conns {
			// Whatever the server answered before closing (a 4xx or
			// nothing), it is never a 5xx.
			c.SetReadDeadline(time.Now().Add(time.Second))
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode >= 500 {
				t.Errorf("slow request answered %d", resp.StatusCode)
			}
		}
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		settle(t)
		c := dial()
		if c == nil {
			t.Fatal("no connection")
		}
		defer c.Close()
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		waitFor(t, "an idle connection closed", 5*time.Second, func() bool { return serverConns(t, port) == 0 })
	})

	t.Run("huge bodies and headers", func(t *testing.T) {
		settle(t)
		client := m.HTTPClient()
		// Bodies of spaces: JSON whitespace, which a decoder reads on
		// until its limit.
		huge := func(method, path string, size int64, headers map[string]string) int {
			req, _ := http.NewRequest(method, m.URL()+path, io.LimitReader(spaces{}, size))
			req.ContentLength = size
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				return 0 // cut off mid-body: no answer to read
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		var wg sync.WaitGroup
		codes := make(chan string, 32)
		for range 4 { // 12 connections, under the cap
			wg.Add(3)
			go func() {
				defer wg.Done()
				// Signed webhook bodies over the cap: hashed as they stream
				// (or cut by the read timeout), never held.
				codes <- fmt.Sprint("webhook ", huge("POST", "/v1/webhook", 26<<20, map[string]string{apiserver.GitHubSignatureHeader: "sha256=00"}))
			}()
			go func() {
				defer wg.Done()
				codes <- fmt.Sprint("nodes ", huge("POST", "/v1/nodes", 8<<20, map[string]string{"Authorization": "Bearer " + m.AdminToken()}))
			}()
			go func() {
				defer wg.Done()
				codes <- fmt.Sprint("header ", huge("GET", "/v1/nodes", 0, map[string]string{"X-Big": strings.Repeat("h", 100<<10)}))
			}()
		}
		wg.Wait()
		close(codes)
		want := map[string]int{"webhook": 413, "nodes": 413, "header": 431}
		for c := range codes {
			what, code, _ := strings.Cut(c, " ")
			n, _ := strconv.Atoi(code)
			// 0: the server answered and closed while the client was still
			// sending, which the client may see as a broken connection;
			// 408: the read deadline cut the body first, on a slow machine.
			if n != want[what] && n != 0 && !(n == http.StatusRequestTimeout && what != "header") {
				t.Errorf("%s: answered %d, want %d", what, n, want[what])
			}
		}
	})

	t.Run("odd paths and methods", func(t *testing.T) {
		settle(t)
		auth := "Authorization: Bearer " + m.AdminToken() + "\r\n"
		for _, tc := range []struct {
			raw  string
			want int
		}{
			{"GET /v1/nodes/..%2f..%2fetc HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 405},
			{"POST /v1/nodes/..%2f..%2fetc/heartbeat HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 0\r\n\r\n", 400},
			{"GET /v1/nodes/%00/pods HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400},
			{"GET /v1/nodes/a\x00b/pods HTTP/1.1\r\nHost: x\r\n\r\n", 400},
			// The mux redirects to the cleaned path, /v1/nodes, a 401.
			{"GET //v1//nodes HTTP/1.1\r\nHost: x\r\n\r\n", 307},
			{"GET /v1/nodes/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 307},
			{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404},
			{"GET /v1/pods/default/" + strings.Repeat("a", 8000) + "/logs HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400},
			{"GET /" + strings.Repeat("a", 70<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", 431},
			{"BREW /v1/nodes HTTP/1.1\r\nHost: x\r\n\r\n", 405},
			{"DELETE /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 405},
			{"G@T /v1/nodes HTTP/1.1\r\nHost: x\r\n\r\n", 400},
			{"GET /v1/nodes HTTP/9.9\r\nHost: x\r\n\r\n", 505},
			{"garbage\r\n\r\n", 400},
			{"GET /v1/webhook HTTP/1.1\r\nHost: x\r\n\r\n", 405},
			{"POST /v1/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 401},
			{"GET /v1/pods?index=1&wait=forever HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n", 400},
		} {
			got := status(tc.raw)
			line, _, _ := strings.Cut(tc.raw, "\r\n")
			if len(line) > 80 {
				line = line[:80] + "…"
			}
			// 505 is how net/http refuses an HTTP version it does not
			// speak, before any handler: the one 5xx a client can cause.
			if got != tc.want {
				t.Errorf("%q: %d, want %d", line, got, tc.want)
			}
		}
	})

	t.Run("blocking query outlasts the write timeout", func(t *testing.T) {
		settle(t)
		c := api.NewClient(m.URL(), m.AdminToken(), api.WithHTTPClient(m.HTTPClient()))
		start := time.Now()
		_, _, err := c.Pods(context.Background(), "", &api.Watch{Index: 1 << 40, Wait: 1200 * time.Millisecond})
		if err != nil || time.Since(start) < time.Second {
			t.Fatalf("a 1.2 s blocking query under a 0.5 s write timeout: %v after %s", err, time.Since(start))
		}
	})

	peak := stopHeap()
	if grew := int64(peak) - int64(heapBefore); grew > 64<<20 {
		t.Errorf("heap grew by %d MiB during the attack, want under 64", grew>>20)
	}
	m.HTTPClient().CloseIdleConnections()
	waitFor(t, "descriptors back to where they were", 5*time.Second, func() bool { return openFDs(t) <= fdsBefore+4 })
}

type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
