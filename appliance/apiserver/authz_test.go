package apiserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

func code(err error) int {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return 200
	}
	return -1
}

// TestRoles: a read-only token reads but never writes or reads a node's
// secrets; tokens created through the API work until revoked or expired.
func TestRoles(t *testing.T) {
	admin, _ := newTestAPI(t)
	ctx := context.Background()
	ro := api.NewClient(admin.Server(), readOnly)
	if _, _, err := ro.Pods(ctx, "", nil); err != nil {
		t.Errorf("read-only GET /v1/pods: %v", err)
	}
	if _, err := ro.CreateToken(ctx, api.TokenRequest{Role: "admin"}); code(err) != http.StatusForbidden {
		t.Errorf("read-only creating a token: %v, want 403", err)
	}
	if _, err := admin.RegisterNode(ctx, state.Node{Name: "n1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ro.NodePods(ctx, "n1", nil); code(err) != http.StatusForbidden {
		t.Errorf("read-only reading a node's pods and secrets: %v, want 403", err)
	}

	nt, err := admin.CreateToken(ctx, api.TokenRequest{Role: "read-only", Description: "ci"})
	if err != nil || nt.Token.Hash != "" {
		t.Fatalf("create token: %+v %v (the hash must not be sent)", nt, err)
	}
	fresh := api.NewClient(admin.Server(), nt.Secret)
	if _, err := fresh.Status(ctx); err != nil {
		t.Errorf("new token: %v", err)
	}
	if err := admin.RevokeToken(ctx, nt.Token.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Status(ctx); code(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked token: %v, want 401 revoked", err)
	}
	short, err := admin.CreateToken(ctx, api.TokenRequest{Role: "read-only", TTL: "50ms"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := api.NewClient(admin.Server(), short.Secret).Status(ctx); code(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v, want 401 expired", err)
	}
	if _, err := admin.CreateToken(ctx, api.TokenRequest{Role: "root"}); code(err) != http.StatusBadRequest {
		t.Errorf("unknown role: %v, want 400", err)
	}
	list, err := admin.Tokens(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("tokens: %d %v", len(list), err)
	}
	for _, tok := range list {
		if tok.Hash != "" {
			t.Errorf("token %s listed with its hash", tok.ID)
		}
	}
}

// TestWhoAmI: every token holder learns its own role and token ID, never
// its secret or hash; an agent learns its certificate's name; no
// credentials, or a revoked token, get a 401.
func TestWhoAmI(t *testing.T) {
	admin, _ := newTestAPI(t)
	ctx := context.Background()
	join, err := admin.CreateToken(ctx, api.TokenRequest{Role: "agent-join"})
	if err != nil {
		t.Fatal(err)
	}
	for secret, want := range map[string]api.WhoAmI{
		token:       {Role: "admin", TokenID: "abcdef"},
		readOnly:    {Role: "read-only", TokenID: "rdonly"},
		join.Secret: {Role: "agent-join", TokenID: join.Token.ID},
	} {
		c := api.NewClient(admin.Server(), secret)
		got, err := c.WhoAmI(ctx)
		if err != nil || got != want {
			t.Errorf("whoami with the %s token: %+v %v, want %+v", want.Role, got, err, want)
		}
		resp, err := http.DefaultClient.Do(&http.Request{Method: "GET", URL: mustParse(t, admin.Server()+"/v1/whoami"), Header: http.Header{"Authorization": {"Bearer " + secret}}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, tokenSecret, _ := strings.Cut(secret, ".")
		if strings.Contains(string(b), tokenSecret) || strings.Contains(string(b), "hash") {
			t.Errorf("whoami tells a secret: %s", b)
		}
	}
	resp, err := http.Get(admin.Server() + "/v1/whoami")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("whoami without credentials: %v %v, want 401", resp.StatusCode, err)
	}
	if _, err := api.NewClient(admin.Server(), "wrong0.0123456789abcdef").WhoAmI(ctx); code(err) != http.StatusUnauthorized {
		t.Errorf("whoami with an unknown token: %v, want 401", err)
	}
	if err := admin.RevokeToken(ctx, join.Token.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := api.NewClient(admin.Server(), join.Secret).WhoAmI(ctx); code(err) != http.StatusUnauthorized {
		t.Errorf("whoami with a revoked token: %v, want 401", err)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestAgentCertificates: an agent's certificate speaks for its own node
// only: its pods, their statuses and Secrets, and the Services its proxy
// renders; nothing of another node's.
func TestAgentCertificates(t *testing.T) {
	b := newBackend(t)
	ca, err := pki.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.IssueServer("m0", []string{pki.OrgMasters}, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(NewServer(Config{Backend: b, Heartbeats: &reconcile.Heartbeats{}}))
	if srv.TLS, err = pki.ServerTLS(ca.CertPEM, srvCert, srvKey); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := func(name string) *api.Client {
		cert, key, err := ca.IssueServer(name, []string{pki.OrgNodes}, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tc, err := pki.ClientTLS(ca.CertPEM, cert, key, pki.OrgMasters)
		if err != nil {
			t.Fatal(err)
		}
		return api.NewClient(srv.URL, "", api.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}))
	}
	n1, n2 := client("n1"), client("n2")
	ctx := context.Background()
	for _, c := range []*api.Client{n1, n2} {
		name := map[*api.Client]string{n1: "n1", n2: "n2"}[c]
		if _, err := c.RegisterNode(ctx, state.Node{Name: name}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	if _, err := n1.RegisterNode(ctx, state.Node{Name: "n2"}); code(err) != http.StatusForbidden {
		t.Errorf("n1 registering as n2: %v, want 403", err)
	}
	secret := objects.Secret{StringData: map[string]string{"pw": "x"}}
	secret.APIVersion, secret.Kind, secret.Metadata = "v1", "Secret", objects.ObjectMeta{Name: "s2", Namespace: "default"}
	rev := state.Revision{Commit: "abc", Status: state.RevisionApplied, Objects: []state.Object{
		{ID: objects.ObjectID{Kind: "Secret", Namespace: "default", Name: "s2"}, JSON: mustJSON(t, &secret)}}}
	pod := func(name, node string, secretName string) []state.Command {
		p := state.Pod{Namespace: "default", Name: name, Spec: objects.PodSpec{Containers: []objects.Container{{Name: "c", Image: "i"}}}}
		if secretName != "" {
			p.Spec.Containers[0].Env = []objects.EnvVar{{Name: "PW", ValueFrom: &objects.EnvVarSource{SecretKeyRef: &objects.KeySelector{Name: secretName, Key: "pw"}}}}
		}
		return []state.Command{state.NewCommand(state.CmdCreatePod, p), state.NewCommand(state.CmdBindPod, state.PodBinding{Key: "default/" + name, NodeName: node})}
	}
	cmds := append([]state.Command{state.NewCommand(state.CmdAddRevision, rev)}, pod("p1", "n1", "")...)
	if _, err := b.Propose(ctx, append(cmds, pod("p2", "n2", "s2")...)); err != nil {
		t.Fatal(err)
	}

	a, _, err := n1.NodePods(ctx, "n1", nil)
	if err != nil || len(a.Pods) != 1 || len(a.Secrets) != 0 {
		t.Fatalf("n1's own pods: %+v %v (no Secret is bound to its pods)", a, err)
	}
	if _, _, err := n1.NodePods(ctx, "n2", nil); code(err) != http.StatusForbidden {
		t.Errorf("n1 reading n2's pods and Secrets: %v, want 403", err)
	}
	if a, _, err := n2.NodePods(ctx, "n2", nil); err != nil || a.Secrets["default/s2"] == nil {
		t.Errorf("n2 gets the Secret its pod uses: %+v %v", a.Secrets, err)
	}
	if _, _, err := n1.Pods(ctx, "", nil); code(err) != http.StatusForbidden {
		t.Errorf("agent listing every pod: %v, want 403", err)
	}
	if me, err := n1.WhoAmI(ctx); err != nil || me != (api.WhoAmI{Role: RoleNode, Certificate: "n1"}) {
		t.Errorf("whoami of n1's agent: %+v %v", me, err)
	}
	if err := n1.SetPodStatus(ctx, "default", "p2", state.PodStatus{Phase: state.PodRunning}); code(err) != http.StatusForbidden {
		t.Errorf("n1 reporting n2's pod: %v, want 403", err)
	}
	if err := n1.SetPodStatus(ctx, "default", "p1", state.PodStatus{Phase: state.PodRunning}); err != nil {
		t.Errorf("n1 reporting its own pod: %v", err)
	}
	unhealthy := func(ns, pod string) state.Event {
		return state.NewEvent(state.EventWarning, "Unhealthy", state.ObjectRef{Kind: "Pod", Namespace: ns, Name: pod},
			state.EventSource{Component: "scheduler"}, time.Now(), "Readiness probe failed")
	}
	if _, err := n1.RecordEvents(ctx, "n1", []state.Event{unhealthy("default", "p1"), unhealthy("default", "p2")}); code(err) != http.StatusForbidden {
		t.Errorf("n1 reporting an event of n2's pod: %v, want 403", err)
	}
	if _, err := n1.RecordEvents(ctx, "n2", []state.Event{unhealthy("default", "p2")}); code(err) != http.StatusForbidden {
		t.Errorf("n1 reporting events as n2: %v, want 403", err)
	}
	nodeEvent := state.NewEvent(state.EventWarning, "Rebooted", state.ObjectRef{Kind: "Node", Name: "n2"}, state.EventSource{Component: "x"}, time.Now(), "")
	if _, err := n1.RecordEvents(ctx, "n1", []state.Event{nodeEvent}); code(err) != http.StatusForbidden {
		t.Errorf("n1 reporting an event of node n2: %v, want 403", err)
	}
	if res, err := n1.RecordEvents(ctx, "n1", []state.Event{unhealthy("default", "p1"), unhealthy("default", "gone")}); err != nil || res.Recorded != 1 || res.Dropped != 1 {
		t.Errorf("n1 reporting its own pod's event and a gone pod's: %+v %v, want 1 recorded, 1 dropped", res, err)
	}
	if evs := b.State().Events; len(evs) != 1 || evs[0].Source != (state.EventSource{Component: api.AgentComponent, Host: "n1"}) {
		t.Errorf("recorded events %+v: want one, its source the reporting node whatever it said", evs)
	}
	if _, _, err := n1.Events(ctx, api.EventFilter{}, nil); code(err) != http.StatusForbidden {
		t.Errorf("agent listing events: %v, want 403", err)
	}
	if err := n1.Heartbeat(ctx, "n2", api.Heartbeat{}); code(err) != http.StatusForbidden {
		t.Errorf("n1 heartbeating for n2: %v, want 403", err)
	}
	if _, _, err := n1.Services(ctx, nil); err != nil {
		t.Errorf("agent reading services for its proxy: %v", err)
	}
	if _, err := n1.Objects(ctx, "Secret"); code(err) != http.StatusForbidden {
		t.Errorf("agent listing the revision's Secrets: %v, want 403", err)
	}
	if _, err := n1.CreateToken(ctx, api.TokenRequest{Role: "admin"}); code(err) != http.StatusForbidden {
		t.Errorf("agent creating a token: %v, want 403", err)
	}
}
