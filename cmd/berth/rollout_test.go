package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

// rolloutMaster is a real master (its controllers run) with node n1
// registered and no agent: the test plays the agent.
type rolloutMaster struct {
	t    *testing.T
	m    *appliance.Master
	conf string
}

func newRolloutMaster(t *testing.T) *rolloutMaster {
	m, conf := startTestMaster(t, appliance.Config{})
	rm := &rolloutMaster{t: t, m: m, conf: conf}
	rm.propose(state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n1", CPUMilli: 4000, MemoryBytes: 8 << 30}),
		state.NewCommand(state.CmdSetNodeReady, state.NodeReady{Name: "n1", Ready: true, Time: time.Now()}))
	return rm
}

func (rm *rolloutMaster) propose(cmds ...state.Command) {
	rm.t.Helper()
	if _, err := rm.m.Store.Propose(context.Background(), cmds); err != nil {
		rm.t.Fatal(err)
	}
}

// commit records an applied revision of Deployment default/web, seen now.
func (rm *rolloutMaster) commit(commit, image string, deadline int32) {
	rm.t.Helper()
	d := &objects.Deployment{}
	d.APIVersion, d.Kind, d.Metadata = "apps/v1", "Deployment", objects.ObjectMeta{Name: "web", Namespace: "default"}
	d.Spec.Replicas = 2
	d.Spec.ProgressDeadlineSeconds = &deadline
	d.Spec.Selector.MatchLabels = map[string]string{"app": "web"}
	d.Spec.Template.Metadata = &objects.TemplateMeta{Labels: map[string]string{"app": "web"}}
	d.Spec.Template.Spec.Containers = []objects.Container{{Name: "web", Image: image}}
	b, err := json.Marshal(d)
	if err != nil {
		rm.t.Fatal(err)
	}
	rm.propose(state.NewCommand(state.CmdAddRevision, state.Revision{Commit: commit, Status: state.RevisionApplied, Author: "Ada", Message: "web " + image,
		RevisionTiming: state.RevisionTiming{Seen: time.Now()},
		Objects:        []state.Object{{ID: objects.ObjectID{Kind: "Deployment", Namespace: "default", Name: "web"}, Digest: image, JSON: b}}}))
	rm.propose(state.NewCommand(state.CmdMarkRevision, state.RevisionMark{Commit: commit, Committed: time.Now()}))
}

// startPods plays n1's agent for the pods of image: ready once bound.
func (rm *rolloutMaster) startPods(ctx context.Context, image string) {
	for ctx.Err() == nil {
		st := rm.m.Store.State()
		var cmds []state.Command
		for p := range st.Pods.All() {
			switch {
			case p.Terminating:
				cmds = append(cmds, state.NewCommand(state.CmdDeletePod, state.PodRef{Key: p.Key()}))
			case p.NodeName != "" && !p.Status.Ready && p.Spec.Containers[0].Image == image:
				cmds = append(cmds, state.NewCommand(state.CmdSetPodStatus, state.PodStatusUpdate{Key: p.Key(),
					Status: state.PodStatus{Phase: state.PodRunning, Ready: true, ReadySince: time.Now()}}))
			}
		}
		if len(cmds) > 0 {
			rm.m.Store.Propose(ctx, cmds) // a pod gone meanwhile: the next round
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		rm.m.Store.Wait(wctx, st.Index)
		cancel()
	}
}

// rolloutRequests is how many rollout queries the master has answered.
func (rm *rolloutMaster) rolloutRequests() int {
	conf, err := loadClientConfig(rm.conf)
	if err != nil {
		rm.t.Fatal(err)
	}
	tc, err := pki.ClientTLS([]byte(conf.CA), nil, nil, pki.OrgMasters)
	if err != nil {
		rm.t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := c.Get(strings.Split(conf.Server, ",")[0] + "/metrics")
	if err != nil {
		rm.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	re := regexp.MustCompile(`berth_api_requests_total\{code="200",route="GET /v1/rollouts/\{kind\}/\{namespace\}/\{object\}"\} (\d+)`)
	if m := re.FindSubmatch(b); m != nil {
		fmt.Sscan(string(m[1]), &n)
	}
	return n
}

type result struct {
	out  string
	code int
}

// follow runs a command in the background and returns once the master
// has answered it a rollout query beyond the before it had answered.
func (rm *rolloutMaster) follow(t *testing.T, before int, args ...string) chan result {
	ch := make(chan result, 1)
	go func() {
		out, code := run(t, args...)
		ch <- result{out, code}
	}()
	for rm.rolloutRequests() == before {
		select {
		case r := <-ch:
			t.Fatalf("%v ended early: %d %s", args, r.code, r.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return ch
}

// `berth rollout status` waits for a good rollout (exit 0, kubectl's
// messages), fails one that exceeds its progress deadline and one a newer
// commit replaces; `get revisions` shows how long each took, `rollout
// history` the commits that changed the Deployment, `status` a rejected
// head and the rollout in progress.
func TestRolloutCommands(t *testing.T) {
	rm := newRolloutMaster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rm.commit("c1aaaaaaaaaa", "web:1", 600)
	status := rm.follow(t, 0, "rollout", "status", "deployment/web", "--timeout", "30s", "--config", rm.conf)
	go rm.startPods(ctx, "web:1")
	r := <-status
	if r.code != 0 || !strings.Contains(r.out, `deployment "web" successfully rolled out`) || !strings.Contains(r.out, `Waiting for deployment "web" rollout to finish: `) {
		t.Fatalf("good rollout: exit %d\n%s", r.code, r.out)
	}
	cancel()
	// The convergence controller settles it.
	deadline := time.Now().Add(10 * time.Second)
	for rm.m.Store.State().Current().Outcome == "" && time.Now().Before(deadline) {
		wctx, wcancel := context.WithTimeout(context.Background(), time.Second)
		rm.m.Store.Wait(wctx, rm.m.Store.State().Index)
		wcancel()
	}
	out, code := run(t, "get", "revisions", "--config", rm.conf)
	if code != 0 || !regexp.MustCompile(`c1aaaaaaaa\s+applied\s+1\s+\S+\s+[0-9.]+m?s\s+[0-9.]+m?s\s+Ada`).MatchString(out) {
		t.Fatalf("get revisions: exit %d\n%s", code, out)
	}

	// A bad image: no pod of it ever becomes ready.
	rm.commit("c2bbbbbbbbbb", "web:nope", 1)
	start := time.Now()
	out, code = run(t, "rollout", "status", "deploy", "web", "--timeout", "30s", "--config", rm.conf)
	if code != 1 || !strings.Contains(out, "Waiting for deployment") || time.Since(start) > 20*time.Second {
		t.Fatalf("stuck rollout: exit %d after %s\n%s", code, time.Since(start), out)
	}
	st := rm.m.Store.State()
	if r := st.Current(); r.Outcome != state.OutcomeDeadlineExceeded || r.Detail != "deployment default/web" {
		t.Errorf("c2: %+v", r.RevisionTiming)
	}

	// Replaced while followed.
	rm.commit("c3cccccccccc", "web:nope-again", 600)
	status = rm.follow(t, rm.rolloutRequests(), "rollout", "status", "deployment/web", "--timeout", "30s", "--config", rm.conf)
	rm.commit("c4dddddddddd", "web:4", 600)
	if r := <-status; r.code != 1 {
		t.Fatalf("replaced rollout: exit %d\n%s", r.code, r.out)
	}
	if r := rm.m.Store.State().Revisions[2]; r.Outcome != state.OutcomeSuperseded {
		t.Errorf("c3: %+v", r.RevisionTiming)
	}

	out, code = run(t, "rollout", "history", "deployment/web", "--config", rm.conf)
	if code != 0 || strings.Count(out, "changed") != 3 || !strings.Contains(out, "created") || !strings.Contains(out, "never (deadline)") ||
		!strings.Contains(out, "superseded") {
		t.Errorf("history: exit %d\n%s", code, out)
	}
	rm.propose(state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c5eeeeeeeeee", Status: state.RevisionRejected, Author: "Bob",
		Message: "broken", Diagnostics: []diag.Diagnostic{{Severity: diag.Error, Position: diag.Position{File: "web.yaml", Line: 3, Column: 1}, Message: "replicas: want an integer"}}}))
	out, code = run(t, "status", "--config", rm.conf)
	for _, want := range []string{"c5eeeeeeee failed validation, c4dddddddd still runs", "web.yaml:3:1", "rollout:    deployment default/web: ",
		"outcome:    c3cccccccc superseded (c4dddddddd)"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q: exit %d\n%s", want, code, out)
		}
	}
	// --commit: a rejected commit fails at once; an applied one is
	// followed; one not synced yet is waited for.
	out, code = run(t, "rollout", "status", "deployment/web", "--commit", "c5eee", "--config", rm.conf)
	if code != 1 {
		t.Errorf("--commit of a rejected commit: exit %d\n%s", code, out)
	}
	out, code = run(t, "rollout", "status", "deployment/web", "--commit", "c4ddd", "--watch=false", "--config", rm.conf)
	if code != 0 || !strings.Contains(out, `Waiting for deployment "web" rollout to finish`) {
		t.Errorf("--commit of the applied commit: exit %d\n%s", code, out)
	}
	out, code = run(t, "rollout", "status", "deployment/web", "--commit", "c9", "--timeout", "1500ms", "--config", rm.conf)
	if code != 1 || !strings.Contains(out, "Waiting for commit c9 to be synced...") {
		t.Errorf("--commit never synced: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"rollout", "status", "pod/web"}, {"rollout", "status", "web"}, {"rollout", "history", "deployment/a/b"}} {
		if _, code := run(t, append(args, "--config", rm.conf)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if _, code := run(t, "rollout", "status", "deployment/api", "--config", rm.conf); code != 1 {
		t.Errorf("rollout status of a Deployment not there: exit %d", code)
	}
}

// Errors read as sentences: what an API status means, and which master
// could not be reached, not a status line.
func TestExplainErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&api.Error{Code: 401, Message: "unknown token"}, "the master refused the token (revoked, expired or mistyped? see --config): unknown token"},
		{&api.Error{Code: 403, Message: "DELETE /v1/nodes/a is not allowed"}, "the token is not allowed to do this"},
		{&api.Error{Code: 404, Message: "no pod ns/a"}, "no pod ns/a"},
		{&api.Error{Code: 503, Message: "cannot commit: no leader"}, "the masters cannot do this now"},
		{&api.Error{Code: 418, Message: "tea"}, "the master answered 418 (i'm a teapot): tea"},
	} {
		if got := explain(tc.err); !strings.Contains(got, tc.want) || strings.Contains(got, "Unauthorized") {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = api.NewClient("http://"+addr+",http://"+addr, "t").Status(context.Background())
	if got := explain(err); got != "cannot reach the masters ("+addr+": connection refused; "+addr+": connection refused)" {
		t.Errorf("unreachable: %q from %v", got, err)
	}
	if got := explain(errors.New("plain")); got != "plain" {
		t.Errorf("plain error: %q", got)
	}
}

// The rollout lines are kubectl's.
func TestRolloutMessages(t *testing.T) {
	for _, tc := range []struct {
		v    reconcile.RolloutView
		want string
		done bool
	}{
		{reconcile.RolloutView{Kind: "Deployment", Name: "x", Desired: 4, Updated: 2, Current: 4}, `Waiting for deployment "x" rollout to finish: 2 out of 4 new replicas have been updated...`, false},
		{reconcile.RolloutView{Kind: "Deployment", Name: "x", Desired: 4, Updated: 4, Current: 5}, `Waiting for deployment "x" rollout to finish: 1 old replicas are pending termination...`, false},
		{reconcile.RolloutView{Kind: "Deployment", Name: "x", Desired: 4, Updated: 4, Current: 4, Available: 2}, `Waiting for deployment "x" rollout to finish: 2 of 4 updated replicas are available...`, false},
		{reconcile.RolloutView{Kind: "Deployment", Name: "x", Desired: 4, Updated: 4, Current: 4, Available: 4, Done: true}, `deployment "x" successfully rolled out`, true},
		{reconcile.RolloutView{Kind: "DaemonSet", Name: "d", Strategy: "RollingUpdate", Desired: 3, Updated: 1}, `Waiting for daemon set "d" rollout to finish: 1 out of 3 new pods have been updated...`, false},
		{reconcile.RolloutView{Kind: "DaemonSet", Name: "d", Strategy: "RollingUpdate", Desired: 3, Updated: 3, Available: 3, Done: true}, `daemon set "d" successfully rolled out`, true},
		{reconcile.RolloutView{Kind: "StatefulSet", Name: "s", Strategy: "RollingUpdate", Desired: 3, Ready: 1}, `Waiting for 2 pods to be ready...`, false},
		{reconcile.RolloutView{Kind: "StatefulSet", Name: "s", Strategy: "RollingUpdate", Desired: 3, Ready: 3, Current: 3, Updated: 1, Partition: 1}, `Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...`, false},
		{reconcile.RolloutView{Kind: "StatefulSet", Name: "s", Strategy: "RollingUpdate", Desired: 3, Ready: 3, Current: 3, Updated: 3, Done: true, Revision: "abcdef0123456"}, `statefulset rolling update complete 3 pods at revision abcdef0123...`, true},
	} {
		got, done := rolloutMessage(tc.v)
		if strings.TrimSpace(got) != tc.want || done != tc.done {
			t.Errorf("%+v: %q %v, want %q %v", tc.v, got, done, tc.want, tc.done)
		}
	}
}
