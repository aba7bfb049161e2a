package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/reconcile"
)

// FuzzRequests sends arbitrary bodies and query strings to the API's write
// routes (token creation among them) and blocking reads: every answer must
// be a success or a client error with a JSON message, never a 5xx or a
// panic, and nothing the request carried may corrupt the store (later
// requests still work).
func FuzzRequests(f *testing.F) {
	for _, seed := range []struct{ route, query, body string }{
		{"nodes", "", `{"name": "n1", "cpuMilli": 1000, "labels": {"a": "b"}}`},
		{"nodes", "", `{"name": "` + strings.Repeat("x", 300) + `"}`},
		{"status", "", `{"phase": "Running", "ready": true, "containers": [{"name": "c", "state": "running"}]}`},
		{"status", "", `{"phase": 3}`},
		{"pods", "index=1&wait=1ms", ``},
		{"pods", "index=-1&wait=1h", ``},
		{"nodes", "", `[]`},
		{"status", "", `null`},
		{"tokens", "", `{"role": "master-join", "ttl": "1h", "uses": 2}`},
		{"tokens", "", `{"role": "admin", "uses": 1}`},
		{"tokens", "", `{"role": "agent-join", "ttl": "-1s", "uses": -1}`},
		{"tokens", "", `{"role": "read-only", "ttl": "0", "uses": 9999999999999999999}`},
	} {
		f.Add(seed.route, seed.query, seed.body)
	}
	b := newBackend(f)
	// Blocking queries are capped short: a fuzzed ?index= is a legal
	// request to wait, and the default cap would stall the fuzzer.
	srv := NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{}, MaxWait: 5 * time.Millisecond})
	f.Fuzz(func(t *testing.T, route, query, body string) {
		method, path := http.MethodGet, "/v1/pods"
		switch route {
		case "nodes":
			method, path = http.MethodPost, "/v1/nodes"
		case "status":
			method, path = http.MethodPut, "/v1/pods/default/p/status"
		case "tokens":
			method, path = http.MethodPost, "/v1/tokens"
		}
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s?%s %q: %d %s", method, path, query, body, w.Code, w.Body)
		}
		if w.Code >= 400 && !strings.Contains(w.Body.String(), `"error"`) {
			t.Fatalf("%s %s?%s %q: %d without a JSON error: %s", method, path, query, body, w.Code, w.Body)
		}
	})
}
