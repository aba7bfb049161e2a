package apiserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
)

// WebhookConfig is POST /v1/webhook: Git hosts' push notifications, which
// trigger a sync. berth never reads the payload (the fetch finds what
// changed), but only a caller that proves it knows Secret may trigger.
type WebhookConfig struct {
	// Trigger asks for a sync; nil on a master that follows no repository.
	Trigger func()
	// Secret is what the Git host signs with: GitHub's X-Hub-Signature-256
	// and berth's own X-Berth-Signature-256 carry "sha256=" and the hex
	// HMAC-SHA256 of the body under it; GitLab's X-Gitlab-Token carries the
	// secret itself.
	Secret []byte
	// AllowUnsigned accepts calls with none of those headers: anyone who
	// reaches the API may then trigger fetches (at most one per
	// gitops.DefaultTriggerGap, whatever arrives).
	AllowUnsigned bool
}

// Webhook headers berth checks.
const (
	GitHubSignatureHeader = "X-Hub-Signature-256"
	BerthSignatureHeader  = "X-Berth-Signature-256"
	GitLabTokenHeader     = "X-Gitlab-Token"
)

// maxWebhookBody is GitHub's cap on a webhook payload. The body is only
// hashed as it streams in, never held, so the cap bounds time, not memory.
const maxWebhookBody = 25 << 20

// webhook answers a push notification. Refusals are logged at a bounded
// rate: a flood of them is one line a minute.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	// Only the leader's syncer runs: a follower's Trigger would drop the
	// push. The leader gets the call as it came, and verifies it.
	if s.cfg.Webhook.Trigger != nil && s.cfg.Cluster != nil && !s.cfg.Cluster.IsLeader() && s.forwardToLeader(w, r) {
		return
	}
	code, err := http.StatusAccepted, s.verifyWebhook(r)
	var ae *apiError
	if errors.As(err, &ae) {
		code = ae.code
	}
	s.reqs.WithLabelValues("POST /v1/webhook", strconv.Itoa(code)).Inc()
	if err != nil {
		s.webhookRefusals.Refused("remote", r.RemoteAddr, "code", code, "why", err.Error())
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	s.cfg.Webhook.Trigger()
	writeJSON(w, code, map[string]string{"status": "sync triggered"})
}

func (s *Server) verifyWebhook(r *http.Request) error {
	cfg := s.cfg.Webhook
	if cfg.Trigger == nil {
		return errorf(http.StatusNotFound, "this master follows no config repository (start it with --repo)")
	}
	if len(cfg.Secret) == 0 && !cfg.AllowUnsigned {
		return errorf(http.StatusForbidden, "the webhook is not configured: start the master with --webhook-secret-file FILE and give the Git host the same secret, or with --webhook-allow-unsigned")
	}
	return checkWebhook(cfg.Secret, cfg.AllowUnsigned, r.Header, r.Body)
}

// checkWebhook verifies every credential a call carries: a call that
// carries one that is wrong is refused even when unsigned calls are
// allowed, and a call that carries none is refused unless they are.
// Without a secret (allowUnsigned, then) there is nothing to check against.
func checkWebhook(secret []byte, allowUnsigned bool, h http.Header, body io.Reader) error {
	if len(secret) == 0 {
		return nil
	}
	var sigs []string
	var macs []hash.Hash
	for _, name := range []string{GitHubSignatureHeader, BerthSignatureHeader} {
		if v := h.Values(name); len(v) > 0 {
			if len(v) > 1 {
				return errorf(http.StatusUnauthorized, "%s given %d times", name, len(v))
			}
			sigs = append(sigs, v[0])
			macs = append(macs, hmac.New(sha256.New, secret))
		}
	}
	token := h.Values(GitLabTokenHeader)
	if len(sigs) == 0 && len(token) == 0 {
		if allowUnsigned {
			return nil
		}
		return errorf(http.StatusUnauthorized, "unsigned webhook call: send %s or %s (sha256=HMAC-SHA256 of the body) or %s",
			GitHubSignatureHeader, BerthSignatureHeader, GitLabTokenHeader)
	}
	if len(token) > 0 && (len(token) > 1 || subtle.ConstantTimeCompare([]byte(token[0]), secret) != 1) {
		return errorf(http.StatusUnauthorized, "%s does not match the webhook secret", GitLabTokenHeader)
	}
	if len(macs) == 0 {
		return nil
	}
	ws := make([]io.Writer, len(macs))
	for i, m := range macs {
		ws[i] = m
	}
	n, err := io.Copy(io.MultiWriter(ws...), io.LimitReader(body, maxWebhookBody+1))
	if timedOut(err) {
		return errorf(http.StatusRequestTimeout, "the webhook body did not arrive in time")
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	if n > maxWebhookBody {
		return errorf(http.StatusRequestEntityTooLarge, "webhook body over %d MiB", maxWebhookBody>>20)
	}
	for i, m := range macs {
		// The exact form the hosts send, lower-case hex, compared in
		// constant time: one signature has one spelling.
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		if !hmac.Equal([]byte(sigs[i]), []byte(want)) {
			return errorf(http.StatusUnauthorized, "signature does not match the body under the webhook secret")
		}
	}
	return nil
}
