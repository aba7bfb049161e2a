package apiserver

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

// rolloutKinds maps the path's kind (kubectl's resource names) to the
// object kind.
var rolloutKinds = map[string]string{"deployments": "Deployment", "statefulsets": reconcile.KindStatefulSet, "daemonsets": reconcile.KindDaemonSet}

// rolloutID reads /v1/rollouts/{kind}/{namespace}/{object}.
func rolloutID(r *http.Request) (objects.ObjectID, error) {
	kind, ok := rolloutKinds[r.PathValue("kind")]
	if !ok {
		return objects.ObjectID{}, errorf(http.StatusBadRequest, "unknown kind %q: rollouts are of deployments, statefulsets and daemonsets", r.PathValue("kind"))
	}
	return objects.ObjectID{Kind: kind, Namespace: r.PathValue("namespace"), Name: r.PathValue("object")}, nil
}

// rollout is one workload's rollout; a workload the applied revision does
// not have is a 404, with the revision that removed it if one is kept.
func (s *Server) rollout(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	id, err := rolloutID(r)
	if err != nil {
		return nil, err
	}
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return nil, err
	}
	for _, v := range reconcile.Rollouts(st, d, time.Now()) {
		if v.ID() == id {
			if h := reconcile.History(st, id); len(h) > 0 {
				v.Revision = h[len(h)-1].Commit
			}
			return v, nil
		}
	}
	if h := reconcile.History(st, id); len(h) > 0 && h[len(h)-1].Change == "deleted" {
		return nil, errorf(http.StatusNotFound, "%s %s/%s was removed by commit %s", strings.ToLower(id.Kind), id.Namespace, id.Name, h[len(h)-1].Commit)
	}
	return nil, errorf(http.StatusNotFound, "%s %s/%s is not in the applied revision", strings.ToLower(id.Kind), id.Namespace, id.Name)
}

// rolloutHistory lists the kept revisions that changed one workload.
func (s *Server) rolloutHistory(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	id, err := rolloutID(r)
	if err != nil {
		return nil, err
	}
	h := reconcile.History(st, id)
	if h == nil {
		return nil, errorf(http.StatusNotFound, "no kept revision has %s %s/%s", strings.ToLower(id.Kind), id.Namespace, id.Name)
	}
	return h, nil
}

// summary is a revision without its objects.
func summary(rev *state.Revision) api.RevisionSummary {
	return api.RevisionSummary{Commit: rev.Commit, Author: rev.Author, Message: rev.Message, Time: rev.Time,
		Status: rev.Status, Objects: len(rev.Objects), Diagnostics: rev.Diagnostics, RevisionTiming: rev.RevisionTiming}
}

// statusHeadErrors is how many of a rejected head's errors status shows.
const statusHeadErrors = 3

// rolloutStatus fills in what /v1/status says of revisions and rollouts:
// a rejected head, the rollouts in progress, the last settled revision.
func rolloutStatus(out *api.Status, st *state.State, now time.Time) {
	if n := len(st.Revisions); n > 0 && st.Revisions[n-1].Status == state.RevisionRejected {
		head := summary(&st.Revisions[n-1])
		head.Diagnostics = nil
		for _, d := range st.Revisions[n-1].Diagnostics {
			if d.Severity == diag.Error && len(head.Diagnostics) < statusHeadErrors {
				head.Diagnostics = append(head.Diagnostics, d)
			}
		}
		out.RejectedHead = &head
	}
	for i := len(st.Revisions) - 1; i >= 0; i-- {
		if st.Revisions[i].Outcome != "" {
			last := summary(&st.Revisions[i])
			out.LastSettled = &last
			break
		}
	}
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return
	}
	for _, v := range reconcile.Rollouts(st, d, now) {
		if !v.Done {
			out.Rollouts = append(out.Rollouts, v)
		}
		if v.Kind == "Deployment" && v.Reason == reconcile.ProgressDeadlineExceeded {
			out.Stalled = append(out.Stalled, v.Namespace+"/"+v.Name)
		}
	}
}

// convergenceCollector exports the convergence histogram the state
// keeps. Every master exports the same numbers (the state is
// replicated): each revision is in them once, whichever master led when
// it converged; sum or rate one master's series, not all of them.
type convergenceCollector struct{ backend Backend }

var (
	convergenceDesc = prometheus.NewDesc("berth_revision_convergence_seconds",
		"Time from a commit seen at the branch head to every replica it changed Ready, per converged revision.", nil, nil)
	outcomesDesc = prometheus.NewDesc("berth_revision_outcomes_total",
		"Applied revisions by how their rollout ended: Converged, Superseded or ProgressDeadlineExceeded.", []string{"outcome"}, nil)
)

func (c convergenceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- convergenceDesc
	ch <- outcomesDesc
}

func (c convergenceCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.backend.State().Convergence
	if stats == nil {
		stats = &state.ConvergenceStats{Bounds: state.ConvergenceBuckets, Counts: make([]uint64, len(state.ConvergenceBuckets))}
	}
	buckets := map[float64]uint64{}
	for i, b := range stats.Bounds {
		if i < len(stats.Counts) {
			buckets[b] = stats.Counts[i]
		}
	}
	ch <- prometheus.MustNewConstHistogram(convergenceDesc, stats.Count, stats.Sum, buckets)
	for _, o := range []state.RevisionOutcome{state.OutcomeConverged, state.OutcomeSuperseded, state.OutcomeDeadlineExceeded} {
		ch <- prometheus.MustNewConstMetric(outcomesDesc, prometheus.CounterValue, float64(stats.Outcomes[o]), string(o))
	}
}
