package apiserver

import (
	"maps"
	"net/http"
	"slices"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

func (s *Server) jobs(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	out := []state.Job{}
	for _, k := range slices.Sorted(maps.Keys(st.Jobs)) {
		out = append(out, *st.Jobs[k])
	}
	return out, nil
}

func (s *Server) cronJobs(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return nil, err
	}
	out := []api.CronJobStatus{}
	for _, cj := range d.CronJobs {
		cs := api.CronJobStatus{Namespace: cj.Metadata.Namespace, Name: cj.Metadata.Name, Schedule: cj.Spec.Schedule,
			TimeZone: cj.Spec.TimeZone, Suspend: cj.Spec.Suspend}
		for _, j := range st.Jobs {
			if j.Namespace != cs.Namespace || j.CronJob != cs.Name {
				continue
			}
			if !j.Status.Done() {
				cs.Active++
			}
			if j.ScheduledTime.After(cs.LastSchedule) {
				cs.LastSchedule = j.ScheduledTime
			}
		}
		out = append(out, cs)
	}
	return out, nil
}

func (s *Server) daemonSets(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return nil, err
	}
	out := []api.DaemonSetStatus{}
	for _, ds := range d.DaemonSets {
		v := api.DaemonSetStatus{Namespace: ds.Metadata.Namespace, Name: ds.Metadata.Name, NodeSelector: ds.Spec.Template.Spec.NodeSelector}
		for _, n := range st.Nodes {
			if n.Ready && reconcile.Selects(v.NodeSelector, n.Labels) {
				v.Desired++
			}
		}
		hash := reconcile.TemplateHash(ds.Spec.Template)
		v.Current, v.Ready, v.UpToDate = podCounts(st, reconcile.KindDaemonSet, v.Namespace, v.Name, hash)
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) statefulSets(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return nil, err
	}
	out := []api.StatefulSetStatus{}
	for _, ss := range d.StatefulSets {
		v := api.StatefulSetStatus{Namespace: ss.Metadata.Namespace, Name: ss.Metadata.Name, ServiceName: ss.Spec.ServiceName, Replicas: ss.Spec.Replicas}
		hash := reconcile.TemplateHash(ss.Spec.Template)
		v.Current, v.Ready, v.UpToDate = podCounts(st, reconcile.KindStatefulSet, v.Namespace, v.Name, hash)
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) claims(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	users := map[string][]string{}
	for p := range st.Pods.All() {
		for _, name := range p.Spec.Claims() {
			k := state.PodKey(p.Namespace, name)
			users[k] = append(users[k], p.Name)
		}
	}
	out := []api.ClaimStatus{}
	for _, k := range slices.Sorted(maps.Keys(st.Claims)) {
		c := api.ClaimStatus{Claim: *st.Claims[k], Phase: "Pending", Pods: users[k]}
		switch {
		case c.Released:
			c.Phase = "Released"
		case c.NodeName != "":
			c.Phase = "Bound"
		}
		out = append(out, c)
	}
	return out, nil
}

// podCounts counts an owner's live pods, the ready ones and those of the
// current template.
func podCounts(st *state.State, kind, namespace, name, hash string) (current, ready, upToDate int) {
	for p := range st.Pods.OfOwner(kind, namespace, name) {
		if p.Terminating {
			continue
		}
		current++
		if p.Status.Ready {
			ready++
		}
		if p.TemplateHash == hash {
			upToDate++
		}
	}
	return current, ready, upToDate
}
