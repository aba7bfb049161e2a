package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// redisServer starts Debian's redis-server on loopback with password,
// stopped at cleanup, and returns its address.
func redisServer(t *testing.T, password string) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("%v: test/setup.sh installs Debian's redis-server", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--requirepass", password,
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	t.Fatalf("redis-server did not listen on %s:\n%s", addr, out.Bytes())
	return "", nil
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestItems(t *testing.T) {
	addr, stopRedis := redisServer(t, "s3cret")
	srv := httptest.NewServer(newHandler("api-a", newPool(addr, "s3cret")))
	defer srv.Close()

	if code, body := call(t, "GET", srv.URL+"/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	for _, name := range []string{"tea", " <b>cups</b> "} {
		if code, body := call(t, "POST", srv.URL+"/api/items", fmt.Sprintf(`{"name": %q}`, name)); code != 201 {
			t.Fatalf("POST %q: %d %s", name, code, body)
		}
	}
	for _, bad := range []string{``, `{"name": "  "}`, `{"name": "` + strings.Repeat("x", maxName+1) + `"}`} {
		if code, _ := call(t, "POST", srv.URL+"/api/items", bad); code != 400 {
			t.Errorf("POST %.20q: %d, want 400", bad, code)
		}
	}
	code, body := call(t, "GET", srv.URL+"/api/items", "")
	var l list
	if err := json.Unmarshal([]byte(body), &l); code != 200 || err != nil {
		t.Fatalf("GET: %d %s %v", code, body, err)
	}
	if want := (list{Pod: "api-a", Items: []item{{"tea"}, {"<b>cups</b>"}}}); fmt.Sprint(l) != fmt.Sprint(want) {
		t.Errorf("GET: %+v, want %+v", l, want)
	}

	// A wrong password: not ready, saying why; alive all the same.
	wrong := httptest.NewServer(newHandler("api-b", newPool(addr, "wrong")))
	defer wrong.Close()
	if code, body := call(t, "GET", wrong.URL+"/readyz", ""); code != 503 || !strings.Contains(body, "WRONGPASS") {
		t.Errorf("readyz with a wrong password: %d %s", code, body)
	}
	if code, _ := call(t, "GET", wrong.URL+"/healthz", ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}

	// Redis gone: not ready.
	stopRedis()
	if code, body := call(t, "GET", srv.URL+"/readyz", ""); code != 503 {
		t.Errorf("readyz without redis: %d %s", code, body)
	}
}
