package apiserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/names"
)

// FuzzRequests sends arbitrary bodies, query strings and path names to the
// API's write and blocking-read routes (node registration, pod status,
// token creation, heartbeats with their problems, events, cordons, watches
// with the hash of the answer held) and to the reads that take names or
// kinds (events, objects, rollouts, Secret comparison): every answer must be a success or a client
// error with a JSON message, never a 5xx or a panic, nothing the request
// carried may corrupt the store (later requests still work), and no node
// with a name outside the rule is ever stored.
func FuzzRequests(f *testing.F) {
	for _, seed := range []struct{ route, name, query, body string }{
		{"nodes", "", "", `{"name": "n1", "cpuMilli": 1000, "labels": {"a": "b"}}`},
		{"nodes", "", "", `{"name": "` + strings.Repeat("x", 300) + `"}`},
		{"nodes", "", "", `{"name": "../../etc"}`},
		{"nodes", "", "", `{"name": "n2", "address": "10.0.0.2:10250", "labels": {"example.com/zone": "a"}}`},
		{"status", "p", "", `{"phase": "Running", "ready": true, "containers": [{"name": "c", "state": "running"}]}`},
		{"status", "p", "", `{"phase": 3}`},
		{"status", "../p", "", `{}`},
		{"tokens", "", "", `{"role": "read-only", "ttl": "1h", "description": "ci"}`},
		{"tokens", "", "", `{"role": "root"}`},
		{"heartbeat", "n1", "", ``},
		{"heartbeat", "..\x00", "", ``},
		{"heartbeat", "n1", "", `{"problem": "container runtime is down", "diskPressure": true}`},
		{"heartbeat", "n1", "", `{"problem": 5, "extra": 1}`},
		{"pods", "", "index=1&wait=1ms&hash=0011", ``},
		{"pods", "", "index=1&wait=1ms", ``},
		{"pods", "", "index=-1&wait=1h", ``},
		{"nodes", "", "", `[]`},
		{"status", "p", "", `null`},
		{"tokens", "", "", `{"role": "master-join", "ttl": "1h", "uses": 2}`},
		{"tokens", "", "", `{"role": "admin", "uses": 1}`},
		{"tokens", "", "", `{"role": "agent-join", "ttl": "-1s", "uses": -1}`},
		{"tokens", "", "", `{"role": "read-only", "ttl": "0", "uses": 9999999999999999999}`},
		{"node-events", "n1", "", `{"events": [{"type": "Warning", "reason": "Unhealthy", "message": "x", "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"}, "count": 1}]}`},
		{"node-events", "n1", "", `{"events": [{"type": "Bogus", "count": -5, "involvedObject": {"kind": "Node", "name": "../n2"}}]}`},
		{"events", "", "namespace=shop&kind=Pod&name=p&index=1&wait=1ms", ``},
		{"events", "", "namespace=../x&kind=%00", ``},
		{"objects", "", "kind=Secret", ``},
		{"objects", "", "kind=<script>", ``},
		{"rollout", "deployments/default/web", "", ``},
		{"rollout", "pods/../../x/history", "", ``},
		{"compare-secrets", "", "", `[{"namespace": "default", "name": "db", "data": {"k": "dg=="}}]`},
		{"compare-secrets", "", "", `[{"data": null}, 5]`},
		{"scheduling", "n1", "", `{"unschedulable": true, "drain": true}`},
	} {
		f.Add(seed.route, seed.name, seed.query, seed.body)
	}
	b := newBackend(f)
	// Blocking queries are capped short: a fuzzed ?index= is a legal
	// request to wait, and the default cap would stall the fuzzer.
	srv := NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{}, MaxWait: 5 * time.Millisecond})
	f.Fuzz(func(t *testing.T, route, name, query, body string) {
		method, path := http.MethodGet, "/v1/pods"
		switch route {
		case "nodes":
			method, path = http.MethodPost, "/v1/nodes"
		case "status":
			method, path = http.MethodPut, "/v1/pods/default/"+url.PathEscape(name)+"/status"
		case "tokens":
			method, path = http.MethodPost, "/v1/tokens"
		case "heartbeat":
			method, path = http.MethodPost, "/v1/nodes/"+url.PathEscape(name)+"/heartbeat"
		case "node-events":
			method, path = http.MethodPost, "/v1/nodes/"+url.PathEscape(name)+"/events"
		case "events":
			path = "/v1/events"
		case "objects":
			path = "/v1/objects"
		case "rollout":
			// The name holds the kind, namespace and object (and maybe
			// "history"), each escaped as a client would send it.
			parts := strings.Split(name, "/")
			for i, p := range parts {
				parts[i] = url.PathEscape(p)
			}
			path = "/v1/rollouts/" + strings.Join(parts, "/")
		case "compare-secrets":
			method, path = http.MethodPost, "/v1/applied/secrets"
		case "scheduling":
			method, path = http.MethodPut, "/v1/nodes/"+url.PathEscape(name)+"/scheduling"
		}
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s?%s %q: %d %s", method, path, query, body, w.Code, w.Body)
		}
		// The mux's own answer for a path no route matches (a name of "/"
		// escaped) is plain text; every route answers JSON.
		noRoute := w.Code == http.StatusNotFound && w.Body.String() == "404 page not found\n"
		if w.Code >= 400 && !noRoute && !strings.Contains(w.Body.String(), `"error"`) {
			t.Fatalf("%s %s?%s %q: %d without a JSON error: %s", method, path, query, body, w.Code, w.Body)
		}
		for n := range b.State().Nodes {
			if !names.IsDNS1123Subdomain(n) {
				t.Fatalf("%s %s %q stored the node name %q", method, path, body, n)
			}
		}
	})
}

// FuzzJoinRequest decodes arbitrary join requests: each is a 400 with a
// message, or a request whose name and hosts follow their rules.
func FuzzJoinRequest(f *testing.F) {
	for _, s := range []string{
		`{"name": "node-1", "hosts": ["127.0.0.1", "node-1.example"], "csrPEM": "LS0t"}`,
		`{"name": "../../etc", "hosts": ["127.0.0.1"], "csrPEM": "LS0t"}`,
		`{"name": "m1", "hosts": ["a/b"], "csrPEM": "LS0t"}`,
		`{"name": "m1", "hosts": ["::1", "FE80::1"], "csrPEM": "LS0t"}`,
		`{"name": "", "csrPEM": ""}`, `{"name": 1}`, `null`, ``,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, master bool) {
		role := auth.RoleAgentJoin
		if master {
			role = auth.RoleMasterJoin
		}
		req, err := decodeJoin(httptest.NewRequest(http.MethodPost, "/v1/join/agent", strings.NewReader(body)), role)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.code/100 != 4 {
				t.Fatalf("%q: %v, want a 4xx", body, err)
			}
			return
		}
		if !names.IsDNS1123Subdomain(req.Name) || len(req.CSRPEM) == 0 {
			t.Fatalf("%q: accepted name %q", body, req.Name)
		}
		for _, h := range req.Hosts {
			// Nothing that would change a URL or a certificate name's
			// meaning; a colon only in an IPv6 address.
			if strings.ContainsAny(h, "/\\@?# \x00\n") || strings.Contains(h, ":") && net.ParseIP(h) == nil {
				t.Fatalf("%q: accepted host %q", body, h)
			}
		}
	})
}

// FuzzWebhookSignature checks arbitrary webhook calls: a call is accepted
// only when every signature it carries is the HMAC of its body and every
// token is the secret, or it carries none and unsigned calls are allowed.
func FuzzWebhookSignature(f *testing.F) {
	body := []byte(`{"ref": "refs/heads/main"}`)
	good := api.Signature([]byte("s"), body)
	for _, c := range []struct {
		secret, github, berth, gitlab string
		body                          []byte
		unsigned                      bool
	}{
		{"s", good, "", "", body, false},
		{"s", "", good, "", body, false},
		{"s", "", "", "s", body, false},
		{"s", good, "", "x", body, false},
		{"s", "sha256=", "", "", body, false},
		{"s", "", "", "", body, true},
		{"", "sha256=00", "", "", nil, true},
	} {
		f.Add(c.secret, c.github, c.berth, c.gitlab, c.body, c.unsigned)
	}
	f.Fuzz(func(t *testing.T, secret, github, berth, gitlab string, body []byte, unsigned bool) {
		if secret == "" {
			unsigned = true // what the master's configuration comes to
		}
		h := http.Header{}
		for name, v := range map[string]string{GitHubSignatureHeader: github, BerthSignatureHeader: berth, GitLabTokenHeader: gitlab} {
			if v != "" {
				h.Set(name, v)
			}
		}
		err := checkWebhook([]byte(secret), unsigned, h, bytes.NewReader(body))
		if err != nil {
			if ae, ok := err.(*apiError); !ok || ae.code/100 != 4 {
				t.Fatalf("%v, want a 4xx", err)
			}
			return
		}
		if secret == "" {
			return
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		for _, sig := range []string{github, berth} {
			if sig != "" && sig != want {
				t.Fatalf("accepted signature %q, want %q", sig, want)
			}
		}
		if gitlab != "" && gitlab != secret {
			t.Fatalf("accepted token %q", gitlab)
		}
		if github == "" && berth == "" && gitlab == "" && !unsigned {
			t.Fatal("accepted an unsigned call")
		}
	})
}
