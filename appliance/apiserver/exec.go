package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/appliance/state"
)

// streamIdle closes an exec or port-forward session that nothing went
// through for so long; the agent has the same bound.
const streamIdle = 30 * time.Minute

// exec relays `berth exec` to the pod's agent: once the agent has switched
// protocols, the master switches the client's connection too and copies
// bytes both ways, through fixed buffers. Admins only: a command in a
// container reads its secrets.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	p, n, ok := s.sessionPod(w, r, "exec")
	if !ok {
		return
	}
	o, err := api.ParseExecOptions(r.URL.RawQuery)
	if err == nil {
		o.Container, err = p.LogContainer(o.Container)
	}
	if err != nil {
		failJSON(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.relayUpgrade(w, r, n, podURL(n, p, "exec", o.Query()), api.ProtoExec)
}

// portForward relays one connection of `berth port-forward` to the pod's
// agent, which dials the pod's port. Admins only, as exec.
func (s *Server) portForward(w http.ResponseWriter, r *http.Request) {
	p, n, ok := s.sessionPod(w, r, "port-forward")
	if !ok {
		return
	}
	q := r.URL.Query()
	if len(q) != 1 || len(q["port"]) != 1 {
		failJSON(w, http.StatusBadRequest, "give one port, and nothing else: ?port=N")
		return
	}
	port, err := api.ParsePort(q.Get("port"))
	if err != nil {
		failJSON(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.relayUpgrade(w, r, n, podURL(n, p, "portforward", url.Values{"port": {strconv.Itoa(port)}}), api.ProtoPortForward)
}

func failJSON(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// sessionPod lets admins in, and finds the pod the path names and its
// node; otherwise it answers and returns false.
func (s *Server) sessionPod(w http.ResponseWriter, r *http.Request, what string) (*state.Pod, *state.Node, bool) {
	st := s.cfg.Backend.State()
	id, err := s.authenticate(r, st)
	if err == nil && !admins(id, r, st) {
		err = errorf(http.StatusForbidden, "%s is allowed for admin tokens only, not for %s %q", what, id.Role, id.Name)
	}
	if err != nil {
		s.cfg.Logger.Warn("request denied", "route", what, "remote", r.RemoteAddr, "who", id.Name, "why", err.Error())
		ae := err.(*apiError)
		failJSON(w, ae.code, "%s", ae.msg)
		return nil, nil, false
	}
	if err := checkPathNames(r, []string{"namespace", "pod"}); err != nil {
		failJSON(w, http.StatusBadRequest, "%s", err.(*apiError).msg)
		return nil, nil, false
	}
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	p := st.Pods.Get(ns + "/" + name)
	switch {
	case p == nil:
		failJSON(w, http.StatusNotFound, "no pod %s/%s", ns, name)
	case p.NodeName == "":
		failJSON(w, http.StatusBadRequest, "pod %s/%s is not scheduled to a node yet", ns, name)
	case st.Nodes[p.NodeName] == nil || st.Nodes[p.NodeName].Address == "":
		failJSON(w, http.StatusBadGateway, "node %s has no agent address to reach", p.NodeName)
	default:
		return p, st.Nodes[p.NodeName], true
	}
	return nil, nil, false
}

func podURL(n *state.Node, p *state.Pod, sub string, q url.Values) string {
	return "https://" + n.Address + "/v1/pods/" + url.PathEscape(p.Namespace) + "/" + url.PathEscape(p.Name) + "/" + sub + "?" + q.Encode()
}

// relayUpgrade asks the node to switch to proto at target and, once it
// has, switches the client's connection and pipes the two. The node's
// refusal (no such container, too many sessions) is the client's answer.
func (s *Server) relayUpgrade(w http.ResponseWriter, r *http.Request, n *state.Node, target, proto string) {
	if !httpserve.Wants(r, proto) {
		failJSON(w, http.StatusBadRequest, "send Connection: Upgrade and Upgrade: %s", proto)
		return
	}
	// The context bounds the node's answer only: net/http hands over an
	// upgraded connection, which its end no longer touches.
	ctx, cancel := context.WithTimeout(r.Context(), nodeAnswerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		failJSON(w, http.StatusBadGateway, "node %s: its address %q makes no URL", n.Name, n.Address)
		return
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)
	resp, err := s.nodeClient.Do(req)
	if err != nil {
		failJSON(w, http.StatusBadGateway, "node %s: %v", n.Name, err)
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		code := resp.StatusCode
		if code < 400 {
			code = http.StatusBadGateway
		}
		failJSON(w, code, "node %s: %s", n.Name, strings.TrimSpace(string(b)))
		return
	}
	node, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || resp.Header.Get("Upgrade") != proto {
		resp.Body.Close()
		failJSON(w, http.StatusBadGateway, "node %s switched to %q, not %s", n.Name, resp.Header.Get("Upgrade"), proto)
		return
	}
	cancel()
	client, err := httpserve.Upgrade(w, proto, streamIdle)
	if err != nil {
		node.Close()
		s.cfg.Logger.Warn("switching protocols", "route", proto, "err", err)
		return
	}
	httpserve.Pipe(client, node)
}

// nodeAnswerTimeout bounds the wait for a node to switch protocols (a
// port-forward dials the pod first).
const nodeAnswerTimeout = 15 * time.Second

// top asks every node with an agent address for its containers' usage, at
// once, and answers what each said (or why it did not).
func (s *Server) top(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	if len(r.URL.Query()) != 0 {
		return nil, errorf(http.StatusBadRequest, "this route takes no parameters")
	}
	out := make([]api.NodeUsage, 0, len(st.Nodes))
	for _, n := range st.Nodes {
		out = append(out, api.NodeUsage{Node: n.Name, Containers: []api.ContainerUsage{}})
	}
	slices.SortFunc(out, func(a, b api.NodeUsage) int { return strings.Compare(a.Node, b.Node) })
	ctx, cancel := context.WithTimeout(r.Context(), nodeAnswerTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range out {
		n := st.Nodes[out[i].Node]
		if n.Address == "" || !n.Ready {
			out[i].Error = "node is not ready"
			continue
		}
		wg.Go(func() {
			c, err := s.nodeUsage(ctx, n)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Containers = c
		})
	}
	wg.Wait()
	return out, nil
}

// maxUsageAnswer bounds a node's usage answer: a few hundred bytes per
// container.
const maxUsageAnswer = 8 << 20

func (s *Server) nodeUsage(ctx context.Context, n *state.Node) ([]api.ContainerUsage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+n.Address+"/v1/usage", nil)
	if err != nil {
		return nil, fmt.Errorf("its address %q makes no URL", n.Address)
	}
	resp, err := s.nodeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxUsageAnswer)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(body, 4<<10))
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var c []api.ContainerUsage
	if err := json.NewDecoder(body).Decode(&c); err != nil {
		return nil, fmt.Errorf("decoding its answer: %w", err)
	}
	return c, nil
}
