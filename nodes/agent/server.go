package agent

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/containerd/containerd/errdefs"

	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/nodes/runtime"
	"github.com/berth/berth/schemas/names"
)

// Handler serves the agent's own small API, which the masters call: a
// container's log (GET /v1/pods/{namespace}/{name}/logs?container=&follow=)
// for `berth logs`; exec, port-forward and usage (exec.go). It is served over TLS, and only masters' client
// certificates (signed by the cluster CA) are let in.
//
// No answer carries an error from below the agent: those name files under
// the node's data dir, which stay in the agent's own log.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/pods/{namespace}/{name}/logs", a.logs)
	mux.HandleFunc("POST /v1/pods/{namespace}/{name}/exec", a.exec)
	mux.HandleFunc("POST /v1/pods/{namespace}/{name}/portforward", a.portForward)
	mux.HandleFunc("GET /v1/usage", a.usage)
	return mux
}

func (a *Agent) logs(w http.ResponseWriter, r *http.Request) {
	rt := a.fromMaster(w, r, "logs")
	if rt == nil {
		return
	}
	req, code, err := a.logRequest(r)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	err = rt.Logs(r.Context(), req.ref, req.container, req.follow, fw)
	if err == nil || fw.wrote {
		return
	}
	if errdefs.IsNotFound(err) {
		http.Error(w, fmt.Sprintf("container %q of pod %q has not started yet", req.container, req.ref), http.StatusNotFound)
		return
	}
	a.log.Warn("reading a container's log", "pod", req.ref, "container", req.container, "err", err)
	http.Error(w, "reading the log failed; the node's agent log has the details", http.StatusInternalServerError)
}

// fromMaster lets in only masters' certificates, and returns the runtime
// once it is up; otherwise it answers and returns nil.
func (a *Agent) fromMaster(w http.ResponseWriter, r *http.Request, what string) Runtime {
	if r.TLS == nil {
		http.Error(w, "TLS required", http.StatusUnauthorized)
		return nil
	}
	if _, orgs, ok := pki.Identity(r.TLS); !ok || !slices.Contains(orgs, pki.OrgMasters) {
		a.log.Warn("request denied: not a master's certificate", "what", what, "remote", r.RemoteAddr)
		http.Error(w, "only masters may ask for "+what+" here", http.StatusForbidden)
		return nil
	}
	rt := a.runtime()
	if rt == nil {
		http.Error(w, "agent is starting", http.StatusServiceUnavailable)
	}
	return rt
}

type logRequest struct {
	ref       runtime.PodRef
	container string
	follow    bool
}

// logRequest checks a log request against the pods this node runs, as the
// kubelet checks one against the pod's spec: the namespace and name are
// valid names of a pod the masters gave this node, the container is one
// its spec lists. Nothing else reaches the runtime.
func (a *Agent) logRequest(r *http.Request) (logRequest, int, error) {
	p, ref, code, err := a.pathPod(r)
	if err != nil {
		return logRequest{}, code, err
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return logRequest{}, http.StatusBadRequest, errors.New("malformed query string")
	}
	if len(q["container"]) > 1 || len(q["follow"]) > 1 {
		return logRequest{}, http.StatusBadRequest, errors.New("give one container and at most one follow")
	}
	container, err := p.LogContainer(q.Get("container"))
	if err != nil {
		return logRequest{}, http.StatusBadRequest, err
	}
	follow := false
	if v := q.Get("follow"); v != "" {
		if follow, err = strconv.ParseBool(v); err != nil {
			return logRequest{}, http.StatusBadRequest, errors.New("follow: want true or false")
		}
	}
	return logRequest{ref: ref, container: container, follow: follow}, 0, nil
}

// pathPod is the pod the request's path names, if this node runs it.
func (a *Agent) pathPod(r *http.Request) (*state.Pod, runtime.PodRef, int, error) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if err := names.DNSLabel(ns); err != nil {
		return nil, runtime.PodRef{}, http.StatusBadRequest, fmt.Errorf("the pod namespace %w", err)
	}
	if err := names.DNSSubdomain(name); err != nil {
		return nil, runtime.PodRef{}, http.StatusBadRequest, fmt.Errorf("the pod name %w", err)
	}
	p, ref, ok := a.pod(ns, name)
	if !ok {
		return nil, runtime.PodRef{}, http.StatusNotFound, fmt.Errorf("pod %q is not on this node", ns+"/"+name)
	}
	return p, ref, 0, nil
}

// pod finds a pod this agent runs, as the masters last described it, and
// its runtime identity.
func (a *Agent) pod(namespace, name string) (*state.Pod, runtime.PodRef, bool) {
	a.mu.Lock()
	w := a.workers[namespace+"/"+name]
	a.mu.Unlock()
	if w == nil {
		return nil, runtime.PodRef{}, false
	}
	p, _ := w.latest()
	return p, w.ref, true
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
