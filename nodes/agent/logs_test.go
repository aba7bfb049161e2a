package agent

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/network"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/schemas/objects"
)

// routeEnv is an agent with a real runtime (on a containerd of its own,
// with no pod network: no pod starts) behind its real TLS server.
type routeEnv struct {
	dir string
	rt  *runtime.Runtime
	a   *Agent
	srv *httptest.Server
	ca  *pki.CA
}

func newRouteEnv(t *testing.T) *routeEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the runtime's containerd")
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd not installed")
	}
	dir := t.TempDir()
	ctx := context.Background()
	discard := slog.New(slog.DiscardHandler)
	d, err := runtime.StartContainerd(ctx, filepath.Join(dir, "containerd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	// The runtime needs a pod network to exist; no pod is started here, so
	// it stays configuration files under dir.
	netw, err := network.New(network.Config{PodCIDR: "10.244.251.0/24", DataDir: filepath.Join(dir, "cni")})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(ctx, d.Address(), filepath.Join(dir, "runtime"), netw, runtime.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })

	a, err := New(Config{Node: state.Node{Name: "n1"}, Master: api.NewClient("https://127.0.0.1:1", ""), DataDir: filepath.Join(dir, "agent"),
		NewRuntime: func(context.Context, state.Node) (Runtime, error) { return rt, nil }, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	a.rt = rt
	close(a.ready)
	ca, err := pki.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey, err := ca.IssueServer("n1", []string{pki.OrgNodes}, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Handler())
	if srv.TLS, err = pki.ServerTLS(ca.CertPEM, nodeCert, nodeKey); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &routeEnv{dir: dir, rt: rt, a: a, srv: srv, ca: ca}
}

// pod makes the agent run a pod of containers, as the masters would
// give it one; the runtime starts nothing.
func (e *routeEnv) pod(name string, containers ...string) runtime.PodRef {
	p := &state.Pod{Namespace: "default", Name: name, Created: time.Unix(1700000000, 0)}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, objects.Container{Name: c, Image: "i"})
	}
	w := newPodWorker(context.Background(), e.a, p)
	w.update(p, &api.NodeAssignment{})
	e.a.workers[p.Key()] = w
	return w.ref
}

// client has a certificate of the cluster CA for the organization.
func (e *routeEnv) client(t *testing.T, org string) *http.Client {
	t.Helper()
	cert, key, err := e.ca.IssueServer("m0", []string{org}, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := pki.ClientTLS(e.ca.CertPEM, cert, key, pki.OrgNodes)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
}

// TestLogsRoute sends the agent's log route hostile container and pod
// names over its real TLS server, in front of a real runtime (on a
// containerd of its own) whose log directory holds real log files, and a
// planted file at the target of each traversal: only the names the pod's
// spec lists are read, everything else is a 4xx that names no path.
func TestLogsRoute(t *testing.T) {
	e := newRouteEnv(t)
	dir, rt, ctx := e.dir, e.rt, context.Background()
	web, db := e.pod("web-1", "web", "sidecar", "evil"), e.pod("db-1", "db")
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logPath := func(ref runtime.PodRef, container string) string {
		t.Helper()
		p, err := rt.LogPath(ref, container)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	webLog := logPath(web, "web")
	write(webLog, "hello from web\n")
	write(logPath(db, "db"), "db only\n")
	// Where each traversal would land from the web pod's log directory.
	hostile := []string{"../../../../var/log/dpkg", strings.Repeat("../", 30) + "var/log/dpkg", "..", "/etc/passwd", "a/b",
		"\x00", "%00", "web.log", "web\x00", " web", "WEB", "wéb", "ｗｅｂ", strings.Repeat("a", 300), "-web", "web-", "."}
	for _, h := range hostile {
		if p := filepath.Join(filepath.Dir(webLog), h+".log"); strings.HasPrefix(p, dir+"/") && !strings.Contains(p, "\x00") && len(filepath.Base(p)) < 256 {
			write(p, "PLANTED "+h)
		}
	}
	// A log that is a link out of the runtime's directory is not followed.
	write(filepath.Join(dir, "outside.log"), "PLANTED outside")
	if err := os.Symlink(filepath.Join(dir, "outside.log"), logPath(web, "evil")); err != nil {
		t.Fatal(err)
	}

	master, agent := e.client(t, pki.OrgMasters), e.client(t, pki.OrgNodes)

	type row struct {
		client *http.Client
		path   string // under /v1/pods/
		query  url.Values
		code   int
		want   string // in the body
	}
	q := func(container string) url.Values { return url.Values{"container": {container}} }
	rows := []row{
		{master, "default/web-1/logs", q("web"), 200, "hello from web\n"},
		{master, "default/db-1/logs", nil, 200, "db only\n"}, // a pod's only container needs no name
		{master, "default/db-1/logs", url.Values{"container": {"db"}, "follow": {"false"}}, 200, "db only\n"},
		{master, "default/web-1/logs", nil, 400, "choose one of: web, sidecar, evil"},
		{master, "default/web-1/logs", q(""), 400, "choose one of"},
		{master, "default/web-1/logs", q("db"), 400, `container "db" is not valid for pod "default/web-1"`},
		{master, "default/web-1/logs", url.Values{"container": {"web", "../../../../var/log/dpkg"}}, 400, "one container"},
		{master, "default/web-1/logs", url.Values{"container": {"web"}, "follow": {"yes please"}}, 400, "follow"},
		// In the spec but never started: no log yet.
		{master, "default/web-1/logs", q("sidecar"), 404, `"sidecar"`},
		// A broken log file is the node's fault, told without its path.
		{master, "default/web-1/logs", q("evil"), 500, "reading the log"},
		{master, "default/nope/logs", q("web"), 404, `pod "default/nope" is not on this node`},
		{master, "Default/web-1/logs", q("web"), 400, "namespace"},
		{master, "default/..%2F..%2Fetc/logs", q("web"), 400, "pod name"},
		{master, "default/web_1/logs", q("web"), 400, "pod name"},
		{master, "default/" + strings.Repeat("w", 254) + "/logs", q("web"), 400, "pod name"},
		{agent, "default/web-1/logs", q("web"), 403, "only masters"},
	}
	for _, h := range hostile {
		rows = append(rows, row{master, "default/web-1/logs", q(h), 400, "not valid for pod"})
	}
	for _, r := range rows {
		resp, err := r.client.Get(e.srv.URL + "/v1/pods/" + r.path + "?" + r.query.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.code || !strings.Contains(string(body), r.want) {
			t.Errorf("%s?%s: %d %q, want %d with %q", r.path, r.query.Encode(), resp.StatusCode, short(body), r.code, r.want)
		}
		if bytes.Contains(body, []byte(dir)) || bytes.Contains(body, []byte("PLANTED")) {
			t.Errorf("%s?%s: the answer gives away a path or a file outside the log: %q", r.path, r.query.Encode(), short(body))
		}
	}

	// The runtime refuses the same names itself, whoever calls it.
	for _, h := range append(hostile, "evil") {
		var out bytes.Buffer
		err := rt.Logs(ctx, web, h, false, &out)
		if err == nil || out.Len() > 0 {
			t.Errorf("runtime logs of container %q: %v %q, want an error and nothing read", h, err, short(out.Bytes()))
		} else if strings.Contains(err.Error(), dir) {
			t.Errorf("runtime logs of container %q: the error gives away the data dir: %v", h, err)
		}
	}
	if _, err := rt.LogPath(web, "../x"); err == nil {
		t.Error("LogPath accepted a container name with a path in it")
	}
}

// short keeps a failure's message readable when a test reads a whole file.
func short(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:200:200], "..."...)
	}
	return b
}
