package apiserver

import (
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/berth/berth/appliance/httpserve"
)

// logs relays a container's log from the agent of the pod's node, as the
// Kubernetes API server does from the kubelet: logs stay on the node, and
// people ask the masters. It streams, so it is not a JSON route.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, format string, args ...any) {
		writeJSON(w, code, map[string]string{"error": errorf(code, format, args...).Error()})
	}
	st := s.cfg.Backend.State()
	id, err := s.authenticate(r, st)
	if err == nil && !readers(id, r, st) {
		err = errorf(http.StatusForbidden, "logs are not allowed for %s %q", id.Role, id.Name)
	}
	if err != nil {
		s.cfg.Logger.Warn("request denied", "route", "logs", "remote", r.RemoteAddr, "who", id.Name, "why", err.Error())
		ae := err.(*apiError)
		fail(ae.code, "%s", ae.msg)
		return
	}
	if err := checkPathNames(r, []string{"namespace", "pod"}); err != nil {
		fail(http.StatusBadRequest, "%s", err.(*apiError).msg)
		return
	}
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	p := st.Pods.Get(ns + "/" + name)
	if p == nil {
		fail(http.StatusNotFound, "no pod %s/%s", ns, name)
		return
	}
	// The agent checks the container against the pod's spec too; asking
	// it only for one the spec lists spares it the rest.
	container, err := p.LogContainer(r.URL.Query().Get("container"))
	if err != nil {
		fail(http.StatusBadRequest, "%v", err)
		return
	}
	if p.NodeName == "" {
		fail(http.StatusBadRequest, "pod %s/%s is not scheduled to a node yet", ns, name)
		return
	}
	n := st.Nodes[p.NodeName]
	if n == nil || n.Address == "" {
		fail(http.StatusBadGateway, "node %s has no agent address to fetch logs from", p.NodeName)
		return
	}
	q := url.Values{"container": {container}}
	if v := r.URL.Query().Get("follow"); v != "" {
		q.Set("follow", v)
	}
	target := "https://" + n.Address + "/v1/pods/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/logs?" + q.Encode()
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		fail(http.StatusBadGateway, "node %s: its address %q makes no URL", p.NodeName, n.Address)
		return
	}
	// A followed log lasts as long as the reader wants, and a quiet one
	// may send nothing, not even its headers, for a long time.
	sw, end := httpserve.Stream(w, r)
	defer end()
	resp, err := s.nodeClient.Do(req)
	if err != nil {
		fail(http.StatusBadGateway, "node %s: %v", p.NodeName, err)
		return
	}
	defer resp.Body.Close()
	sw.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	sw.WriteHeader(resp.StatusCode)
	flushCopy(sw, resp.Body)
}

// flushCopy copies src to w, flushing after every read so that a followed
// log reaches the reader line by line.
func flushCopy(w http.ResponseWriter, src io.Reader) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// nodeDialTimeout bounds connecting to an agent; a followed log itself may
// stream for as long as the client wants.
const nodeDialTimeout = 5 * time.Second
