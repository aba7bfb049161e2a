package agent

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/nodes/runtime"
)

// TestSessionRoutes: the agent's exec, port-forward and usage routes,
// over its real TLS server in front of a real runtime: only masters get
// in; a request is checked against the pods the node runs before anything
// runs; a node with maxSessions open refuses one more; an exec in a
// container that is not running switches protocols and says so in an
// error frame.
func TestSessionRoutes(t *testing.T) {
	e := newRouteEnv(t)
	e.pod("web-1", "web", "sidecar")
	master, node := e.client(t, pki.OrgMasters), e.client(t, pki.OrgNodes)
	post := func(c *http.Client, path, proto string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, nil)
		if proto != "" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", proto)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	check := func(resp *http.Response, code int, want string) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %q, want %d with %q", resp.Request.URL.RequestURI(), resp.StatusCode, body, code, want)
		}
	}
	const exec, pf = "/v1/pods/default/web-1/exec?", "/v1/pods/default/web-1/portforward?"
	for _, tc := range []struct {
		client      *http.Client
		path, proto string
		code        int
		want        string
	}{
		{node, exec + "container=web&command=ls", api.ProtoExec, 403, "only masters"},
		{node, pf + "port=80", api.ProtoPortForward, 403, "only masters"},
		{master, exec + "command=ls", api.ProtoExec, 400, "choose one of: web, sidecar"},
		{master, exec + "container=db&command=ls", api.ProtoExec, 400, `container "db" is not valid`},
		{master, exec + "container=web", api.ProtoExec, 400, "no command"},
		{master, exec + "container=web&command=ls&x=1", api.ProtoExec, 400, "unknown parameter"},
		{master, exec + "container=web&command=ls", "", 400, "Upgrade: " + api.ProtoExec},
		{master, "/v1/pods/default/nope/exec?container=web&command=ls", api.ProtoExec, 404, `pod "default/nope" is not on this node`},
		{master, "/v1/pods/default/web_1/exec?container=web&command=ls", api.ProtoExec, 400, "pod name"},
		{master, pf + "port=99999", api.ProtoPortForward, 400, "from 1 to 65535"},
		{master, pf + "port=80&host=10.0.0.1", api.ProtoPortForward, 400, "give one port"},
		{master, pf + "port=80", api.ProtoExec, 400, "Upgrade: " + api.ProtoPortForward},
		// The pod never started here: it has no address to dial.
		{master, pf + "port=80", api.ProtoPortForward, 409, "no IP address yet"},
	} {
		check(post(tc.client, tc.path, tc.proto), tc.code, tc.want)
	}

	// Not running: the agent switches protocols, then tells why in a frame.
	resp := post(master, exec+"container=web&command=ls", api.ProtoExec)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		check(resp, 101, "")
	} else {
		ch, p, err := api.ReadFrame(bufio.NewReader(resp.Body), make([]byte, api.MaxFrame))
		if err != nil || ch != api.ChanError || !strings.Contains(string(p), "not running") || strings.Contains(string(p), e.dir) {
			t.Errorf("exec in a container that is not running: channel %d %q %v, want an error frame that names no path", ch, p, err)
		}
		resp.Body.Close()
	}

	// A node with every session taken refuses one more, before anything.
	for range maxSessions {
		e.a.sessions <- struct{}{}
	}
	check(post(master, exec+"container=web&command=ls", api.ProtoExec), 429, "sessions open")
	for range maxSessions {
		<-e.a.sessions
	}

	// Usage: no container runs, so none is reported; the route takes no
	// parameters, and only masters.
	r, err := master.Get(e.srv.URL + "/v1/usage")
	if err != nil {
		t.Fatal(err)
	}
	var u []api.ContainerUsage
	if err := json.NewDecoder(r.Body).Decode(&u); err != nil || r.StatusCode != 200 || len(u) != 0 {
		t.Errorf("usage: %d %v %v", r.StatusCode, u, err)
	}
	r.Body.Close()
	if r, err = node.Get(e.srv.URL + "/v1/usage"); err != nil {
		t.Fatal(err)
	}
	check(r, 403, "only masters")
	r, err = master.Get(e.srv.URL + "/v1/usage?window=1h")
	if err != nil {
		t.Fatal(err)
	}
	check(r, 400, "no parameters")
}

// TestUsageRates: CPU is the time used between two readings over the time
// between them; a container that started in between used all of its time
// in the window, and one that restarted (less than before) reads 0.
func TestUsageRates(t *testing.T) {
	ref := runtime.PodRef{Namespace: "default", Name: "web-1", UID: "u"}
	first := []runtime.ContainerUsage{{Pod: ref, Container: "a", CPUNanos: 1e9}, {Pod: ref, Container: "b", CPUNanos: 5e9}}
	second := []runtime.ContainerUsage{{Pod: ref, Container: "a", CPUNanos: 1.25e9, WorkingSet: 3 << 20},
		{Pod: ref, Container: "b", CPUNanos: 1e8, WorkingSet: 1 << 20}, {Pod: ref, Container: "c", CPUNanos: 5e8}}
	got := usageRates(first, second, 500*time.Millisecond)
	want := []api.ContainerUsage{{Namespace: "default", Pod: "web-1", Container: "a", CPUMilli: 500, MemoryBytes: 3 << 20},
		{Namespace: "default", Pod: "web-1", Container: "b", CPUMilli: 0, MemoryBytes: 1 << 20},
		{Namespace: "default", Pod: "web-1", Container: "c", CPUMilli: 1000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("usageRates:\n got %+v\nwant %+v", got, want)
	}
}
