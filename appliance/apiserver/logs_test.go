package apiserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// TestLogsRelayChecksContainer: the master asks a pod's agent only for a
// container the pod's spec lists (the only one when none is named); any
// other name is a 400 that never reaches the node and echoes no path.
func TestLogsRelayChecksContainer(t *testing.T) {
	var (
		mu    sync.Mutex
		asked []string
	)
	node := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Write([]byte("log of " + r.URL.Query().Get("container") + "\n"))
	}))
	t.Cleanup(node.Close)
	b := newBackend(t)
	srv := httptest.NewServer(NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{},
		NodeTLS: node.Client().Transport.(*http.Transport).TLSClientConfig}))
	t.Cleanup(srv.Close)
	pod := func(name string, containers ...string) []state.Command {
		p := state.Pod{Namespace: "default", Name: name}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, objects.Container{Name: c, Image: "i"})
		}
		return []state.Command{state.NewCommand(state.CmdCreatePod, p), state.NewCommand(state.CmdBindPod, state.PodBinding{Key: p.Key(), NodeName: "n1"})}
	}
	cmds := []state.Command{state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "abc", Status: state.RevisionApplied}),
		state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1", Address: strings.TrimPrefix(node.URL, "https://")})}
	cmds = append(cmds, pod("web-1", "web", "sidecar")...)
	if _, err := b.Propose(context.Background(), append(cmds, pod("db-1", "db")...)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		path, query string
		code        int
		want        string
	}{
		{"default/web-1", "container=web&follow=true", 200, "log of web\n"},
		{"default/db-1", "", 200, "log of db\n"},
		{"default/web-1", "", 400, `pod \"default/web-1\" has 2 containers; choose one of: web, sidecar`},
		{"default/web-1", "container=db", 400, `container \"db\" is not valid for pod \"default/web-1\"`},
		{"default/web-1", "container=" + url.QueryEscape("../../../../var/log/dpkg"), 400, `container name is not valid for pod \"default/web-1\"`},
		{"default/web-1", "container=%00", 400, "container name is not valid"},
		{"default/web-1", "container=" + strings.Repeat("a", 300), 400, "container name is not valid"},
		{"default/web-1", "container=w%C3%A9b", 400, "container name is not valid"},
		{"default/..%2F..%2Fetc", "container=web", 400, "invalid pod name"},
		{"default/nope", "container=web", 404, "no pod default/nope"},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/pods/"+tc.path+"/logs?"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+readOnly)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		readBody(&body, resp)
		if resp.StatusCode != tc.code || !strings.Contains(body.String(), tc.want) {
			t.Errorf("%s?%s: %d %s, want %d with %s", tc.path, tc.query, resp.StatusCode, body.String(), tc.code, tc.want)
		}
		if strings.Contains(body.String(), "aaaaaaaaaa") || strings.Contains(body.String(), "dpkg") {
			t.Errorf("%s?%s: the answer echoes the request: %s", tc.path, tc.query, body.String())
		}
	}
	want := []string{"/v1/pods/default/web-1/logs?container=web&follow=true", "/v1/pods/default/db-1/logs?container=db"}
	if strings.Join(asked, " ") != strings.Join(want, " ") {
		t.Errorf("the node was asked %q, want only %q", asked, want)
	}
}
