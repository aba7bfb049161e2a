package appliance

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/apiserver"
	"github.com/berth/berth/appliance/state"
)

// POST /v1/sync and the push webhook reach the leader's syncer through a
// follower (which runs no syncer): the follower relays them. Before, a
// webhook that reached a follower was dropped, and the push waited for
// the next poll.
func TestSyncAndWebhookThroughFollower(t *testing.T) {
	repo := helloRepo(t)
	m0, m1 := leaderAndFollower(t, &Config{Repo: repo, Poll: time.Hour, WebhookSecret: []byte("hook")})
	eventually(t, "the first revision", func() bool { return m0.Store.State().Current() != nil })
	commit := func(old, new, msg string) string {
		t.Helper()
		commitEdit(t, repo, old, new, msg)
		head, err := os.ReadFile(filepath.Join(repo, ".git", "refs", "heads", "main"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(head))
	}

	two := commit("replicas: 3", "replicas: 2", "two replicas")
	follower := api.NewClient(m1.URL(), m0.AdminToken(), api.WithHTTPClient(m1.HTTPClient()))
	res, err := follower.Sync(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision == nil || res.Revision.Commit != two || res.Revision.Status != state.RevisionApplied || res.Sync.Path != "" {
		t.Fatalf("sync through the follower: %+v", res)
	}

	one := commit("replicas: 2", "replicas: 1", "one replica")
	req, _ := http.NewRequest(http.MethodPost, m1.URL()+"/v1/webhook", strings.NewReader(`{}`))
	req.Header.Set(apiserver.GitLabTokenHeader, "hook")
	resp, err := m1.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook through the follower: %s", resp.Status)
	}
	eventually(t, "the commit the webhook announced", func() bool {
		cur := m0.Store.State().Current()
		return cur != nil && cur.Commit == one
	})
}
