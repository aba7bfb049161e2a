package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// execNode is a node's agent as the master sees it: over TLS, it switches
// protocols as the agent does, and echoes. Exec echoes stdin as stdout
// and exits with as many as the resize frames it got plus 7; port-forward
// echoes bytes.
func execNode(t *testing.T) (*httptest.Server, func() []string) {
	var (
		mu    sync.Mutex
		asked []string
	)
	// stream records the request and upgrades it as the agent does, for
	// serve to talk over.
	stream := func(serve func(conn *httpserve.Upgraded)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked = append(asked, r.URL.Path+"?"+r.URL.RawQuery)
			mu.Unlock()
			conn, err := httpserve.Upgrade(w, r.Header.Get("Upgrade"), streamIdle)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			serve(conn)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/pods/{ns}/{pod}/exec", stream(func(conn *httpserve.Upgraded) {
		buf := make([]byte, api.MaxFrame)
		resizes := 0
		for {
			ch, p, err := api.ReadFrame(conn, buf)
			if err != nil {
				return // the client went away
			}
			switch {
			case ch == api.ChanResize:
				resizes++
			case ch == api.ChanStdin && len(p) > 0:
				api.WriteFrame(conn, api.ChanStdout, p)
			case ch == api.ChanStdin:
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], uint32(7+resizes))
				api.WriteFrame(conn, api.ChanExit, b[:])
				return
			}
		}
	}))
	mux.HandleFunc("POST /v1/pods/{ns}/{pod}/portforward", stream(func(conn *httpserve.Upgraded) {
		io.Copy(conn, conn)
	}))
	node := httptest.NewTLSServer(mux)
	t.Cleanup(node.Close)
	return node, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), asked...)
	}
}

func newExecAPI(t *testing.T) (*httptest.Server, func() []string) {
	node, asked := execNode(t)
	b := newBackend(t)
	srv := httptest.NewServer(NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{},
		NodeTLS: node.Client().Transport.(*http.Transport).TLSClientConfig}))
	t.Cleanup(srv.Close)
	p := state.Pod{Namespace: "default", Name: "web-1", Spec: objects.PodSpec{Containers: []objects.Container{{Name: "web", Image: "i"}, {Name: "sidecar", Image: "i"}}}}
	if _, err := b.Propose(context.Background(), []state.Command{
		state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1", Address: strings.TrimPrefix(node.URL, "https://")}),
		state.NewCommand(state.CmdCreatePod, p), state.NewCommand(state.CmdBindPod, state.PodBinding{Key: p.Key(), NodeName: "n1"}),
	}); err != nil {
		t.Fatal(err)
	}
	return srv, asked
}

// TestExecAdminsOnly: exec and port-forward reach into containers, so a
// read-only token gets 403 and no token 401, and neither reaches the node.
func TestExecAdminsOnly(t *testing.T) {
	srv, asked := newExecAPI(t)
	ctx := context.Background()
	o := api.ExecOptions{Container: "web", Command: []string{"cat"}, Stdin: true}
	for _, tc := range []struct {
		secret string
		code   int
	}{{readOnly, http.StatusForbidden}, {"", http.StatusUnauthorized}, {"wrong.0123456789abcdef", http.StatusUnauthorized}} {
		c := api.NewClient(srv.URL, tc.secret)
		if _, err := c.Exec(ctx, "default", "web-1", o, api.ExecStreams{Stdin: strings.NewReader("x")}); code(err) != tc.code {
			t.Errorf("exec with token %q: %v, want %d", tc.secret, err, tc.code)
		}
		if _, err := c.PortForward(ctx, "default", "web-1", 8080); code(err) != tc.code {
			t.Errorf("port-forward with token %q: %v, want %d", tc.secret, err, tc.code)
		}
	}
	if a := asked(); len(a) != 0 {
		t.Errorf("the node was asked %q", a)
	}
	// Reading usage is no more than reading pods.
	if _, err := api.NewClient(srv.URL, readOnly).Top(ctx); err != nil {
		t.Errorf("read-only top: %v", err)
	}
}

// TestExecRelay: the master relays an exec's frames both ways and its exit
// code, and a port-forward's bytes; it passes the node only what it
// checked, and refuses bad requests itself.
func TestExecRelay(t *testing.T) {
	srv, asked := newExecAPI(t)
	ctx := context.Background()
	admin := api.NewClient(srv.URL, token)

	// More than a frame of input, so that it is split and reassembled.
	in := bytes.Repeat([]byte("0123456789abcdef"), 3*api.MaxFrame/16+5)
	resize := make(chan api.TermSize, 2)
	resize <- api.TermSize{Width: 80, Height: 24}
	resize <- api.TermSize{Width: 100, Height: 30}
	close(resize)
	var out bytes.Buffer
	pr, pw := io.Pipe()
	go func() {
		pw.Write(in)
		pw.Close()
	}()
	exit, err := admin.Exec(ctx, "default", "web-1", api.ExecOptions{Container: "web", Command: []string{"sh", "-c", "cat; exit 7"}, Stdin: true, TTY: true},
		api.ExecStreams{Stdin: pr, Stdout: &out, Resize: resize})
	if err != nil || exit < 7 || !bytes.Equal(out.Bytes(), in) {
		t.Errorf("exec: exit %d, %v, %d bytes back of %d", exit, err, out.Len(), len(in))
	}

	// An exec ends with its context, though the command goes on: here the
	// first output cancels it.
	cctx, cancel := context.WithCancel(ctx)
	endless, feed := io.Pipe()
	defer feed.Close()
	go feed.Write([]byte("x"))
	if _, err := admin.Exec(cctx, "default", "web-1", api.ExecOptions{Container: "web", Command: []string{"cat"}, Stdin: true},
		api.ExecStreams{Stdin: endless, Stdout: writerFunc(func(p []byte) (int, error) { cancel(); return len(p), nil })}); err != context.Canceled {
		t.Errorf("exec canceled: %v, want context.Canceled", err)
	}

	conn, err := admin.PortForward(ctx, "default", "web-1", 8080)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "ping")
	b := make([]byte, 4)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping" {
		t.Errorf("port-forward echo: %q %v", b, err)
	}
	conn.Close()

	want := []string{"/v1/pods/default/web-1/exec?command=sh&command=-c&command=cat%3B+exit+7&container=web&stdin=true&tty=true",
		"/v1/pods/default/web-1/exec?command=cat&container=web&stdin=true",
		"/v1/pods/default/web-1/portforward?port=8080"}
	if a := asked(); strings.Join(a, " ") != strings.Join(want, " ") {
		t.Errorf("the node was asked %q, want %q", a, want)
	}

	for _, tc := range []struct {
		path, query string
		upgrade     string
		code        int
		want        string
	}{
		{"default/web-1/exec", "command=ls", api.ProtoExec, 400, `pod \"default/web-1\" has 2 containers`},
		{"default/web-1/exec", "container=db&command=ls", api.ProtoExec, 400, `container \"db\" is not valid`},
		{"default/web-1/exec", "container=web", api.ProtoExec, 400, "no command"},
		{"default/web-1/exec", "container=web&command=ls&evil=1", api.ProtoExec, 400, `unknown parameter \"evil\"`},
		{"default/web-1/exec", "container=web&command=ls&tty=maybe", api.ProtoExec, 400, "tty: want true or false"},
		{"default/web-1/exec", "container=web&command=ls&stdin=true&stdin=false", api.ProtoExec, 400, "give stdin once"},
		{"default/web-1/exec", "container=web" + strings.Repeat("&command=a", 300), api.ProtoExec, 400, "over 256 arguments"},
		{"default/web-1/exec", "container=web&command=" + strings.Repeat("a", 17<<10), api.ProtoExec, 400, "16384 bytes"},
		{"default/web-1/exec", "container=web&command=ls", "", 400, "Upgrade: " + api.ProtoExec},
		{"default/web-1/exec", "container=web&command=ls", api.ProtoPortForward, 400, "Upgrade: " + api.ProtoExec},
		{"default/nope/exec", "container=web&command=ls", api.ProtoExec, 404, "no pod default/nope"},
		{"default/..%2Fx/exec", "container=web&command=ls", api.ProtoExec, 400, "invalid pod name"},
		{"default/web-1/portforward", "", api.ProtoPortForward, 400, "give one port"},
		{"default/web-1/portforward", "port=0", api.ProtoPortForward, 400, "from 1 to 65535"},
		{"default/web-1/portforward", "port=http", api.ProtoPortForward, 400, "from 1 to 65535"},
		{"default/web-1/portforward", "port=80&port=81", api.ProtoPortForward, 400, "give one port"},
		{"default/web-1/portforward", "port=80", api.ProtoExec, 400, "Upgrade: " + api.ProtoPortForward},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/pods/"+tc.path+"?"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if tc.upgrade != "" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", tc.upgrade)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s?%.80s: %d %s, want %d with %s", tc.path, tc.query, resp.StatusCode, body, tc.code, tc.want)
		}
		if strings.Contains(string(body), "aaaaaaaaaa") {
			t.Errorf("%s: the answer echoes the request", tc.path)
		}
	}
	if a := asked(); len(a) != len(want) {
		t.Errorf("bad requests reached the node: %q", a[len(want):])
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
