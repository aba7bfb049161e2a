package apiserver

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/reconcile"
)

// webhookServer is an API on b whose webhook triggers count into
// triggers, and whose log goes to logs.
func webhookServer(b Backend, wc WebhookConfig, triggers *atomic.Int64, logs *bytes.Buffer) *Server {
	if triggers != nil {
		wc.Trigger = func() { triggers.Add(1) }
	}
	return NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{}, Webhook: wc,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
}

func postWebhook(srv http.Handler, body string, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/webhook", strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	return w
}

// Only calls that prove they know the secret trigger a sync; each refusal
// says why in JSON.
func TestWebhookSignatures(t *testing.T) {
	secret := []byte("s3cret")
	const body = `{"ref": "refs/heads/main"}`
	good := api.Signature(secret, []byte(body))
	b := newBackend(t)
	for _, tc := range []struct {
		name    string
		cfg     WebhookConfig
		body    string
		headers map[string]string
		code    int
		want    string
	}{
		{"github", WebhookConfig{Secret: secret}, body, map[string]string{GitHubSignatureHeader: good}, 202, "sync triggered"},
		{"berth", WebhookConfig{Secret: secret}, body, map[string]string{BerthSignatureHeader: good}, 202, "sync triggered"},
		{"gitlab", WebhookConfig{Secret: secret}, body, map[string]string{GitLabTokenHeader: "s3cret"}, 202, "sync triggered"},
		{"unsigned", WebhookConfig{Secret: secret}, body, nil, 401, "unsigned webhook call"},
		{"wrong signature", WebhookConfig{Secret: secret}, body, map[string]string{GitHubSignatureHeader: api.Signature([]byte("other"), []byte(body))}, 401, "signature does not match"},
		{"other body", WebhookConfig{Secret: secret}, body + " ", map[string]string{GitHubSignatureHeader: good}, 401, "signature does not match"},
		{"no prefix", WebhookConfig{Secret: secret}, body, map[string]string{BerthSignatureHeader: strings.TrimPrefix(good, "sha256=")}, 401, "signature does not match"},
		{"not hex", WebhookConfig{Secret: secret}, body, map[string]string{BerthSignatureHeader: "sha256=zz"}, 401, "signature does not match"},
		{"wrong gitlab token", WebhookConfig{Secret: secret}, body, map[string]string{GitLabTokenHeader: "s3cre"}, 401, "X-Gitlab-Token does not match"},
		{"one good one bad", WebhookConfig{Secret: secret}, body, map[string]string{GitHubSignatureHeader: good, GitLabTokenHeader: "nope"}, 401, "does not match"},
		{"allowed unsigned", WebhookConfig{Secret: secret, AllowUnsigned: true}, body, nil, 202, "sync triggered"},
		{"allowed unsigned, bad signature", WebhookConfig{Secret: secret, AllowUnsigned: true}, body, map[string]string{BerthSignatureHeader: "sha256=00"}, 401, "signature does not match"},
		{"open", WebhookConfig{AllowUnsigned: true}, body, map[string]string{GitHubSignatureHeader: "sha256=00"}, 202, "sync triggered"},
		{"not configured", WebhookConfig{}, body, map[string]string{GitHubSignatureHeader: good}, 403, "--webhook-secret-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			w := postWebhook(webhookServer(b, tc.cfg, &n, &bytes.Buffer{}), tc.body, tc.headers)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("%d %s, want %d with %q", w.Code, w.Body, tc.code, tc.want)
			}
			if triggered := n.Load() == 1; triggered != (tc.code == 202) {
				t.Errorf("%d answer, %d triggers", w.Code, n.Load())
			}
		})
	}
	t.Run("no repository", func(t *testing.T) {
		w := postWebhook(webhookServer(b, WebhookConfig{Secret: secret}, nil, &bytes.Buffer{}), body, map[string]string{GitHubSignatureHeader: good})
		if w.Code != 404 || !strings.Contains(w.Body.String(), "--repo") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

// A body over the cap is refused with 413, and read no further than the
// cap: the HMAC streams, nothing of it is held.
func TestWebhookBodyCap(t *testing.T) {
	var n atomic.Int64
	srv := webhookServer(newBackend(t), WebhookConfig{Secret: []byte("s")}, &n, &bytes.Buffer{})
	counted := &countingReader{r: io.LimitReader(zeros{}, 2*maxWebhookBody)}
	req := httptest.NewRequest(http.MethodPost, "/v1/webhook", counted)
	req.Header.Set(GitHubSignatureHeader, "sha256=00")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge || n.Load() != 0 {
		t.Fatalf("%d %s, %d triggers", w.Code, w.Body, n.Load())
	}
	if counted.n > maxWebhookBody+64<<10 {
		t.Errorf("read %d bytes of an oversized body, want the cap %d", counted.n, maxWebhookBody)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// 200 refused calls make one log line at once (the rest are summed up a
// minute later), and trigger nothing.
func TestWebhookRefusalsLoggedBounded(t *testing.T) {
	var n atomic.Int64
	var logs bytes.Buffer
	srv := webhookServer(newBackend(t), WebhookConfig{Secret: []byte("s")}, &n, &logs)
	for range 200 {
		if w := postWebhook(srv, "{}", nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("unsigned call: %d %s", w.Code, w.Body)
		}
	}
	if lines := strings.Count(logs.String(), "webhook call refused"); lines != 1 || n.Load() != 0 {
		t.Fatalf("200 refused calls: %d log lines, %d triggers; log:\n%s", lines, n.Load(), logs.String())
	}
	if !strings.Contains(logs.String(), "unsigned webhook call") {
		t.Errorf("the line does not say why: %s", logs.String())
	}
}
