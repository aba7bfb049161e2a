package agent

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/containerd/containerd/errdefs"

	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/nodes/runtime"
)

// Handler serves the agent's own small API, which the masters call: a
// container's log (GET /v1/pods/{namespace}/{name}/logs?container=&follow=)
// for `berth logs`. It is served over TLS, and only masters' client
// certificates (signed by the cluster CA) are let in.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/pods/{namespace}/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "TLS required", http.StatusUnauthorized)
			return
		}
		if _, orgs, ok := pki.Identity(r.TLS); !ok || !slices.Contains(orgs, pki.OrgMasters) {
			a.log.Warn("log request denied: not a master's certificate", "remote", r.RemoteAddr)
			http.Error(w, "only masters may read logs here", http.StatusForbidden)
			return
		}
		rt := a.runtime()
		if rt == nil {
			http.Error(w, "agent is starting", http.StatusServiceUnavailable)
			return
		}
		ref, containers, ok := a.podContainers(r.PathValue("namespace"), r.PathValue("name"))
		if !ok {
			http.Error(w, errNoPod.Error(), http.StatusNotFound)
			return
		}
		container := r.URL.Query().Get("container")
		if container == "" {
			// Like kubectl: a pod's only container needs no name.
			if len(containers) != 1 {
				http.Error(w, "pod "+ref.String()+" has several containers; choose one of: "+strings.Join(containers, ", "), http.StatusBadRequest)
				return
			}
			container = containers[0]
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
		err := rt.Logs(r.Context(), ref, container, r.URL.Query().Get("follow") == "true", fw)
		if err != nil && !fw.wrote {
			code := http.StatusInternalServerError
			if errdefs.IsNotFound(err) {
				code = http.StatusNotFound
			}
			http.Error(w, err.Error(), code)
		}
	})
	return mux
}

var errNoPod = errors.New("no such pod on this node")

// podContainers finds a pod this agent runs: its runtime identity and its
// containers' names.
func (a *Agent) podContainers(namespace, name string) (runtime.PodRef, []string, bool) {
	a.mu.Lock()
	w := a.workers[namespace+"/"+name]
	a.mu.Unlock()
	if w == nil {
		return runtime.PodRef{}, nil, false
	}
	p, _ := w.latest()
	names := make([]string, 0, len(p.Spec.Containers))
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	return w.ref, names, true
}

// flushWriter flushes after each write so a followed log streams.
type flushWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	f.rc.Flush()
	return n, err
}
