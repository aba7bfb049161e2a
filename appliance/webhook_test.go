package appliance

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/apiserver"
)

// The master's webhook refuses an unsigned call (which once triggered a
// fetch: 200 of them gave 125) and syncs on a signed one.
func TestMasterWebhookNeedsSignature(t *testing.T) {
	m := abuseMaster(t)
	c := api.NewClient(m.URL(), m.AdminToken(), api.WithHTTPClient(m.HTTPClient()))
	ctx := context.Background()
	eventually(t, "the first revision", func() bool {
		revs, err := c.Revisions(ctx)
		return err == nil && len(revs) == 1
	})
	repo := m.cfg.Repo
	commitEdit(t, repo, "replicas: 3", "replicas: 2", "two replicas")

	post := func(header, value string) int {
		t.Helper()
		body := `{"ref": "refs/heads/main"}`
		req, _ := http.NewRequest(http.MethodPost, m.URL()+"/v1/webhook", strings.NewReader(body))
		if header != "" {
			req.Header.Set(header, value)
		}
		resp, err := m.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 20 {
		if code := post("", ""); code != http.StatusUnauthorized {
			t.Fatalf("unsigned webhook call: %d, want 401", code)
		}
	}
	if code := post(apiserver.GitLabTokenHeader, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong GitLab token: %d, want 401", code)
	}
	if revs, _ := c.Revisions(ctx); len(revs) != 1 {
		t.Fatalf("refused calls synced: %d revisions", len(revs))
	}
	if code := post(apiserver.GitLabTokenHeader, "hook"); code != http.StatusAccepted {
		t.Fatalf("GitLab token: %d, want 202", code)
	}
	eventually(t, "the pushed commit, synced by the signed call", func() bool {
		revs, err := c.Revisions(ctx)
		return err == nil && len(revs) == 2 && revs[0].Message == "two replicas"
	})
}
