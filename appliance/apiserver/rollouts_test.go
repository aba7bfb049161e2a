package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

// webRevision is an applied revision of Deployment default/web with
// replicas pods of image, digested as the syncer does (by its JSON).
func webRevision(t *testing.T, commit string, replicas int32, image string, seen time.Time) (state.Revision, *objects.Deployment) {
	d := &objects.Deployment{}
	d.APIVersion, d.Kind, d.Metadata = "apps/v1", "Deployment", objects.ObjectMeta{Name: "web", Namespace: "default"}
	d.Spec.Replicas = replicas
	d.Spec.Template.Spec.Containers = []objects.Container{{Name: "web", Image: image}}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return state.Revision{Commit: commit, Status: state.RevisionApplied, Author: "Ada", Message: "web " + image,
		RevisionTiming: state.RevisionTiming{Seen: seen},
		Objects:        []state.Object{{ID: objects.ObjectID{Kind: "Deployment", Namespace: "default", Name: "web"}, Digest: image, JSON: b}}}, d
}

// GET /v1/rollouts/... is a workload's rollout and its history by
// commit; /v1/status has the rollouts in progress, a rejected head's
// first errors and the last settled revision; /metrics the convergence
// histogram from the state.
func TestRolloutRoutes(t *testing.T) {
	c, b := newTestAPI(t)
	ctx := context.Background()
	propose := func(cmds ...state.Command) {
		t.Helper()
		if _, err := b.Propose(ctx, cmds); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Minute)
	r1, _ := webRevision(t, "c1aaaaaaaa", 2, "web:1", t0)
	propose(state.NewCommand(state.CmdAddRevision, r1),
		state.NewCommand(state.CmdMarkRevision, state.RevisionMark{Commit: "c1aaaaaaaa", Outcome: state.OutcomeConverged, Settled: t0.Add(7 * time.Second)}))
	r2, dep := webRevision(t, "c2bbbbbbbb", 2, "web:2", t0.Add(time.Second))
	propose(state.NewCommand(state.CmdAddRevision, r2))
	hash := reconcile.TemplateHash(dep.Spec.Template)
	for i, ready := range []bool{true, false} {
		p := state.Pod{Namespace: "default", Name: "web-" + hash + "-" + string(rune('a'+i)), Deployment: "web", TemplateHash: hash, Created: t0,
			Status: state.PodStatus{Phase: state.PodRunning, Ready: ready, ReadySince: t0}}
		propose(state.NewCommand(state.CmdCreatePod, p))
	}
	propose(state.NewCommand(state.CmdAddRevision, state.Revision{Commit: "c3cccccccc", Status: state.RevisionRejected, Diagnostics: []diag.Diagnostic{
		{Severity: diag.Warning, Message: "a warning"}, {Severity: diag.Error, Message: "first"}, {Severity: diag.Error, Message: "second"},
		{Severity: diag.Error, Message: "third"}, {Severity: diag.Error, Message: "fourth"}}}))

	v, _, err := c.Rollout(ctx, "deployments", "default", "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Desired != 2 || v.Updated != 2 || v.Ready != 1 || v.Available != 1 || v.Done || v.Revision != "c2bbbbbbbb" {
		t.Errorf("rollout: %+v", v)
	}
	h, err := c.RolloutHistory(ctx, "deployments", "default", "web")
	if err != nil || len(h) != 2 || h[0].Change != "created" || h[1].Commit != "c2bbbbbbbb" || h[1].Message != "web web:2" {
		t.Errorf("history: %+v %v", h, err)
	}
	var e *api.Error
	for _, tc := range []struct {
		kind, name string
		code       int
	}{{"pods", "web", 400}, {"deployments", "Web", 400}, {"deployments", "api", 404}, {"statefulsets", "web", 404}} {
		if _, _, err := c.Rollout(ctx, tc.kind, "default", tc.name, nil); !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("rollout %s/%s: %v, want %d", tc.kind, tc.name, err, tc.code)
		}
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.RejectedHead == nil || st.RejectedHead.Commit != "c3cccccccc" || len(st.RejectedHead.Diagnostics) != statusHeadErrors ||
		st.RejectedHead.Diagnostics[0].Message != "first" {
		t.Errorf("rejected head: %+v", st.RejectedHead)
	}
	if len(st.Rollouts) != 1 || st.Rollouts[0].Name != "web" || st.Rollouts[0].Ready != 1 {
		t.Errorf("rollouts: %+v", st.Rollouts)
	}
	// c1 converged before c2 was applied, and c2 has not settled.
	if st.LastSettled == nil || st.LastSettled.Commit != "c1aaaaaaaa" || st.LastSettled.Outcome != state.OutcomeConverged {
		t.Errorf("last settled: %+v", st.LastSettled)
	}
	revs, err := c.Revisions(ctx)
	if err != nil || len(revs) != 3 || revs[2].Outcome != state.OutcomeConverged || !revs[1].Seen.Equal(t0.Add(time.Second)) {
		t.Errorf("revisions: %+v %v", revs, err)
	}

	resp, err := http.Get(c.Server() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`berth_revision_convergence_seconds_bucket{le="5"} 0`,
		`berth_revision_convergence_seconds_bucket{le="10"} 1`,
		`berth_revision_convergence_seconds_count 1`,
		`berth_revision_convergence_seconds_sum 7`,
		`berth_revision_outcomes_total{outcome="Converged"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
