package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/apiserver"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

const (
	adminToken    = "abcdef.0123456789abcdef"
	readOnlyToken = "rdonly.0123456789abcdef"
	hostile       = `<script>alert("commit")</script>`
	secretValue   = "hunter2-do-not-show"
	hostileImage  = `evil"><img src=x onerror=alert(1)>`
)

// seen is when the test revision was seen: three minutes ago.
var seen = time.Now().Add(-3 * time.Minute).Truncate(time.Second)

// newDashboard serves the real API and the dashboard over TLS, as a
// master mounts them, on an in-memory store holding an admin and a
// read-only token, a revision whose commit message is hostile, a Secret,
// and a pod.
func newDashboard(t *testing.T) (*httptest.Server, *statetest.Store) {
	t.Helper()
	st := statetest.NewStore()
	var cmds []state.Command
	for secret, role := range map[string]auth.Role{adminToken: auth.RoleAdmin, readOnlyToken: auth.RoleReadOnly} {
		tok, err := auth.FromSecret(secret, role, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, state.NewCommand(state.CmdAddToken, tok))
	}
	sec := objects.Secret{Type: "Opaque", StringData: map[string]string{"password": secretValue}}
	sec.APIVersion, sec.Kind, sec.Metadata = "v1", "Secret", objects.ObjectMeta{Name: "db", Namespace: "default"}
	secJSON, _ := json.Marshal(&sec)
	rev := state.Revision{Commit: "0123456789abcdef0123", Author: "Mallory <m@example.com>", Message: hostile + "\r\nsecond line",
		Status: state.RevisionApplied, Objects: []state.Object{{ID: objects.ObjectID{Kind: "Secret", Namespace: "default", Name: "db"}, JSON: secJSON}}}
	rev.Seen = seen
	pod := state.Pod{Namespace: "default", Name: "web-1", Spec: objects.PodSpec{Containers: []objects.Container{{Name: "web", Image: "hello"}}}}
	cmds = append(cmds, state.NewCommand(state.CmdAddRevision, rev), state.NewCommand(state.CmdCreatePod, pod),
		state.NewCommand(state.CmdMarkRevision, state.RevisionMark{Commit: rev.Commit, Committed: seen.Add(850 * time.Millisecond)}),
		state.NewCommand(state.CmdMarkRevision, state.RevisionMark{Commit: rev.Commit, Outcome: state.OutcomeConverged, Settled: seen.Add(4200 * time.Millisecond)}))
	// The pod's events: one whose message is markup (an image name comes
	// from a commit), one that repeated.
	ref := state.ObjectRef{Kind: "Pod", Namespace: "default", Name: "web-1"}
	kubelet := state.EventSource{Component: "kubelet", Host: "n1"}
	pulling := state.NewEvent(state.EventNormal, "Pulling", ref, kubelet, seen, "Pulling image %s", hostileImage)
	probe := state.NewEvent(state.EventWarning, "Unhealthy", ref, kubelet, seen, "Readiness probe failed (container web): 503")
	probe.Count, probe.LastTimestamp = 3, time.Now().Add(-20*time.Second)
	cmds = append(cmds, state.RecordEvents(pulling, probe))
	if _, err := st.Propose(context.Background(), cmds); err != nil {
		t.Fatal(err)
	}
	handler := apiserver.NewServer(apiserver.Config{Backend: st, Heartbeats: &reconcile.Heartbeats{}})
	mux := http.NewServeMux()
	mux.Handle("/", handler)
	mux.Handle("/ui/", New(handler, nil))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv, st
}

// browser is a client with a cookie jar, as a browser keeps the session.
func browser(t *testing.T, srv *httptest.Server) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	c.Jar = jar
	return c
}

func signIn(t *testing.T, srv *httptest.Server, c *http.Client, token string) *http.Response {
	t.Helper()
	resp, err := c.PostForm(srv.URL+"/ui/signin", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSignInAndOut: pages need a session; a bad token is refused with the
// API's reason; a good one is kept in an HttpOnly, Secure, SameSite=Strict
// cookie; another site's form post is refused; signing out ends it.
func TestSignInAndOut(t *testing.T) {
	srv, _ := newDashboard(t)
	c := browser(t, srv)
	resp, err := c.Get(srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.Request.URL.Path != "/ui/signin" || !strings.Contains(b, `<label for="token">API token</label>`) {
		t.Fatalf("without a session: at %s\n%s", resp.Request.URL, b)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	resp = signIn(t, srv, c, "wrong0.0123456789abcdef")
	if b := body(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(b, "The cluster refused this token: invalid bearer token") {
		t.Errorf("bad token: %d\n%s", resp.StatusCode, b)
	}
	for _, bad := range []string{"", strings.Repeat("a", 300), "a b", "a;b"} {
		if resp := signIn(t, srv, c, bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("token %q: %d, want 400", bad, resp.StatusCode)
		}
	}

	resp, err = c.Do(&http.Request{Method: http.MethodPost, URL: mustURL(t, srv.URL+"/ui/signin"), Body: io.NopCloser(strings.NewReader("token=" + adminToken)),
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"cross-site"}}})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site sign-in: %v %v, want 403", resp.StatusCode, err)
	}

	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp = signIn(t, srv, c, adminToken)
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || cookies[0].Name != cookieName || cookies[0].Value != adminToken ||
		!cookies[0].HttpOnly || !cookies[0].Secure || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/ui/" {
		t.Fatalf("sign-in: %d %+v", resp.StatusCode, cookies)
	}
	c.CheckRedirect = nil
	resp, err = c.Get(srv.URL + "/ui/")
	if b := body(t, resp); err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(b, "default/web-1") {
		t.Fatalf("dashboard: %v %d\n%s", err, resp.StatusCode, b)
	}

	resp, err = c.PostForm(srv.URL+"/ui/signout", nil)
	if err != nil || resp.Request.URL.Path != "/ui/signin" {
		t.Fatalf("sign-out: %v", err)
	}
	resp, err = c.Get(srv.URL + "/ui/")
	if err != nil || resp.Request.URL.Path != "/ui/signin" {
		t.Errorf("after sign-out: at %s %v", resp.Request.URL, err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestHostileInputEscaped: a commit message with markup is shown as text,
// on the page and in its live updates, and a CR in it cannot cut an event.
func TestHostileInputEscaped(t *testing.T) {
	srv, _ := newDashboard(t)
	c := browser(t, srv)
	signIn(t, srv, c, adminToken)
	resp, err := c.Get(srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, resp)
	if strings.Contains(b, hostile) || !strings.Contains(b, `&lt;script&gt;alert(&#34;commit&#34;)&lt;/script&gt;`) {
		t.Errorf("the commit message is not escaped:\n%s", b)
	}
	events := openEvents(t, c, srv.URL+"/ui/events")
	rev := events.next(t, "live-revisions")
	if strings.Contains(rev, "<script>") || !strings.Contains(rev, "&lt;script&gt;") {
		t.Errorf("live revisions:\n%s", rev)
	}
}

// TestReadOnlySeesNoSecretValues: a read-only token's dashboard lists the
// Secret and its keys, never its value; an admin's has it.
func TestReadOnlySeesNoSecretValues(t *testing.T) {
	srv, _ := newDashboard(t)
	for token, wantValue := range map[string]bool{readOnlyToken: false, adminToken: true} {
		c := browser(t, srv)
		signIn(t, srv, c, token)
		resp, err := c.Get(srv.URL + "/ui/")
		if err != nil {
			t.Fatal(err)
		}
		b := body(t, resp)
		if !strings.Contains(b, "default/db") || !strings.Contains(b, "password") || strings.Contains(b, secretValue) != wantValue {
			t.Errorf("token %s: the Secret's value shown %v, want %v:\n%s", token[:6], strings.Contains(b, secretValue), wantValue, b)
		}
		secrets := openEvents(t, c, srv.URL+"/ui/events").next(t, "live-secrets")
		if strings.Contains(secrets, secretValue) != wantValue {
			t.Errorf("token %s, live secrets:\n%s", token[:6], secrets)
		}
	}
}

// TestLiveUpdate: a pod that its agent reports ready is shown ready by the
// events stream, without reloading.
func TestLiveUpdate(t *testing.T) {
	srv, st := newDashboard(t)
	c := browser(t, srv)
	signIn(t, srv, c, readOnlyToken)
	events := openEvents(t, c, srv.URL+"/ui/events")
	if pods := events.next(t, "live-pods"); !strings.Contains(pods, "Not ready") {
		t.Fatalf("pods before:\n%s", pods)
	}
	if _, err := st.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdSetPodStatus,
		state.PodStatusUpdate{Key: "default/web-1", Status: state.PodStatus{Phase: state.PodRunning, Ready: true, IP: "10.0.0.9"}})}); err != nil {
		t.Fatal(err)
	}
	if pods := events.next(t, "live-pods"); !strings.Contains(pods, `<span class="badge ok">Ready</span>`) || !strings.Contains(pods, "10.0.0.9") {
		t.Errorf("pods after:\n%s", pods)
	}
	// The token revoked, the page is told to sign in again.
	tokens := st.State().Tokens
	for _, tok := range tokens {
		if tok.Role == auth.RoleReadOnly {
			if _, err := st.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdRevokeToken, state.TokenRef{ID: tok.ID})}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if msg := events.next(t, "signedout"); !strings.Contains(msg, "revoked") {
		t.Errorf("signedout event: %q", msg)
	}
}

// TestPodPage: a pod's page shows it and where its log streams from; a
// pod that is not there, or a name that cannot be one, is said so.
func TestPodPage(t *testing.T) {
	srv, _ := newDashboard(t)
	c := browser(t, srv)
	signIn(t, srv, c, readOnlyToken)
	resp, err := c.Get(srv.URL + "/ui/pods/default/web-1")
	if b := body(t, resp); err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(b, `data-log="/ui/pods/default/web-1/log?container=web"`) {
		t.Errorf("pod page: %v %d\n%s", err, resp.StatusCode, b)
	}
	for path, want := range map[string]int{"/ui/pods/default/nope": http.StatusNotFound, "/ui/pods/Bad_NS/web-1": http.StatusBadRequest,
		"/ui/pods/default/web-1?container=sidecar": http.StatusBadRequest} {
		resp, err := c.Get(srv.URL + path)
		if err != nil || resp.StatusCode != want {
			t.Errorf("%s: %v %v, want %d", path, resp.StatusCode, err, want)
		}
	}
	// Not scheduled, it has no log yet: the stream says why and ends.
	events := openEvents(t, c, srv.URL+"/ui/pods/default/web-1/log")
	if msg := events.next(t, "trouble"); !strings.Contains(msg, "not scheduled") {
		t.Errorf("log of an unscheduled pod: %q", msg)
	}
}

// eventStream reads server-sent events.
type eventStream struct{ r *bufio.Reader }

func openEvents(t *testing.T, c *http.Client, u string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s: %v %v", u, resp, err)
	}
	return &eventStream{r: bufio.NewReader(resp.Body)}
}

// next returns the data of the next event named name, skipping others.
func (s *eventStream) next(t *testing.T, name string) string {
	t.Helper()
	event, data := "", []string{}
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for event %s: %v", name, err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if event == name {
				return strings.Join(data, "\n")
			}
			event, data = "", nil
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
}

// TestPodEvents: a pod's page lists its events as describe does (Type,
// Reason, Age, From, Message; "x3 over 3m" for a repeat), their messages
// escaped, on the page and in its live updates; the dashboard's Events
// section too; an event recorded later arrives without a reload.
func TestPodEvents(t *testing.T) {
	srv, st := newDashboard(t)
	c := browser(t, srv)
	signIn(t, srv, c, readOnlyToken)
	resp, err := c.Get(srv.URL + "/ui/pods/default/web-1")
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, resp)
	escaped := `evil&#34;&gt;&lt;img src=x onerror=alert(1)&gt;`
	for _, want := range []string{`<th scope="col">Type</th><th scope="col">Reason</th><th scope="col">Age</th><th scope="col">From</th><th scope="col">Message</th>`,
		"Pulling", escaped, "20s (x3 over 3m)", `<span class="badge bad">Warning</span>`, "kubelet on n1"} {
		if !strings.Contains(b, want) {
			t.Errorf("the pod page lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(b, "<img") {
		t.Errorf("an event's message is markup on the pod page:\n%s", b)
	}
	events := openEvents(t, c, srv.URL+"/ui/pods/default/web-1/events")
	if ev := events.next(t, "live-pod-events"); strings.Contains(ev, "<img") || !strings.Contains(ev, escaped) {
		t.Errorf("live pod events:\n%s", ev)
	}
	killing := state.NewEvent(state.EventNormal, "Killing", state.ObjectRef{Kind: "Pod", Namespace: "default", Name: "web-1"},
		state.EventSource{Component: "berth"}, time.Now(), "Stopping container web: <b>deleted</b> by token abcdef")
	if _, err := st.Propose(context.Background(), []state.Command{state.RecordEvents(killing)}); err != nil {
		t.Fatal(err)
	}
	if ev := events.next(t, "live-pod-events"); !strings.Contains(ev, "Killing") || !strings.Contains(ev, "&lt;b&gt;deleted&lt;/b&gt;") {
		t.Errorf("live pod events after Killing:\n%s", ev)
	}

	resp, err = c.Get(srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	b = body(t, resp)
	if !strings.Contains(b, `<a href="/ui/pods/default/web-1">pod/default/web-1</a>`) || !strings.Contains(b, escaped) || strings.Contains(b, "<img") {
		t.Errorf("the dashboard's events:\n%s", b)
	}
	if ev := openEvents(t, c, srv.URL+"/ui/events").next(t, "live-events"); strings.Contains(ev, "<img") || !strings.Contains(ev, escaped) {
		t.Errorf("live events:\n%s", ev)
	}
}

// TestConvergenceColumn: each revision shows seen→committed and how its
// rollout went, in berth get revisions' and berth status's words, and a
// new revision's progress arrives live.
func TestConvergenceColumn(t *testing.T) {
	srv, st := newDashboard(t)
	c := browser(t, srv)
	signIn(t, srv, c, adminToken)
	resp, err := c.Get(srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	b := body(t, resp)
	for _, want := range []string{`<th scope="col">Seen→committed</th><th scope="col">Rollout</th>`, "<td>850ms</td>", ">converged in 4.2s</time>"} {
		if !strings.Contains(b, want) {
			t.Errorf("the revisions lack %q:\n%s", want, b)
		}
	}
	events := openEvents(t, c, srv.URL+"/ui/events")
	events.next(t, "live-revisions")
	next := state.Revision{Commit: "fedcba9876543210fedc", Message: "scale web", Status: state.RevisionApplied}
	next.Seen = time.Now()
	if _, err := st.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdAddRevision, next),
		state.NewCommand(state.CmdMarkRevision, state.RevisionMark{Commit: next.Commit, Committed: next.Seen.Add(1200 * time.Millisecond)})}); err != nil {
		t.Fatal(err)
	}
	revs := events.next(t, "live-revisions")
	if !strings.Contains(revs, "<td>1.2s</td>") || !strings.Contains(revs, "<td>in progress</td>") || !strings.Contains(revs, "converged in 4.2s") {
		t.Errorf("a new revision in progress:\n%s", revs)
	}
	if _, err := st.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdMarkRevision,
		state.RevisionMark{Commit: next.Commit, Outcome: state.OutcomeDeadlineExceeded, Settled: time.Now(), Detail: "deployment default/web"})}); err != nil {
		t.Fatal(err)
	}
	revs = events.next(t, "live-revisions")
	if !strings.Contains(revs, `<td class="error">`) || !strings.Contains(revs, ">never (deadline) (deployment default/web)</time>") {
		t.Errorf("a revision past its progress deadline:\n%s", revs)
	}
}

// TestRoleShown: the header says which role's token is signed in, by its
// ID, never the token itself.
func TestRoleShown(t *testing.T) {
	srv, _ := newDashboard(t)
	for token, want := range map[string]string{
		adminToken:    `Signed in with an <strong>admin</strong> token <code title="berth token list shows it by this ID">abcdef</code>`,
		readOnlyToken: `Signed in with a <strong>read-only</strong> token <code title="berth token list shows it by this ID">rdonly</code> <span class="muted">(no Secret values)</span>`,
	} {
		c := browser(t, srv)
		signIn(t, srv, c, token)
		for _, page := range []string{"/ui/", "/ui/pods/default/web-1"} {
			resp, err := c.Get(srv.URL + page)
			if err != nil {
				t.Fatal(err)
			}
			if b := body(t, resp); !strings.Contains(b, want) || strings.Contains(b, token) {
				t.Errorf("%s with token %s: the header lacks %q (or holds the token):\n%s", page, token[:6], want, b)
			}
		}
	}
}
