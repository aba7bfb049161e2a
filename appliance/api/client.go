package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/retry"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

// Client talks to the masters' API. Given several masters it sticks to the
// one that answers and moves to the next when a connection fails, so the
// CLI and agents ride out a master's death.
type Client struct {
	servers []string
	next    atomic.Int32 // index of the server to try first
	token   string
	http    *http.Client
	// answer bounds the wait for one master's response headers, beyond a
	// blocking query's own wait.
	answer time.Duration

	// seen is, per watched path, the index and hash of the last answer, so
	// that a watch from that index asks only for a different answer.
	mu   sync.Mutex
	seen map[string]seenAnswer
}

type seenAnswer struct {
	index uint64
	hash  string
}

// DefaultAnswerTimeout is how long a master may take to start answering
// (beyond a blocking query's wait) before the next one is tried. A master
// behind a half-open connection never answers; an agent stuck on it would
// miss its heartbeats although another master answers; agents use two
// heartbeat periods instead, below the masters' grace.
const DefaultAnswerTimeout = 10 * time.Second

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient replaces the default http.Client (e.g. for TLS settings).
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.http = h } }

// WithAnswerTimeout replaces DefaultAnswerTimeout.
func WithAnswerTimeout(d time.Duration) ClientOption { return func(c *Client) { c.answer = d } }

// NewClient returns a client for the API at base (e.g.
// https://10.0.0.1:7443), or at any of several comma-separated masters.
func NewClient(base, token string, opts ...ClientOption) *Client {
	c := &Client{token: token, http: &http.Client{}, answer: DefaultAnswerTimeout}
	for _, s := range strings.Split(base, ",") {
		if s = strings.TrimRight(strings.TrimSpace(s), "/"); s != "" {
			c.servers = append(c.servers, s)
		}
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Server is the master the client currently talks to.
func (c *Client) Server() string {
	if len(c.servers) == 0 {
		return ""
	}
	return c.servers[int(c.next.Load())%len(c.servers)]
}

// send sends one request, trying each master in turn from the last one
// that answered until one does. Only failures to reach a master move on:
// an answer, even an error status, is the cluster's answer. A master that
// has not started to answer within the answer timeout plus wait (what the
// request itself may take) counts as a failure to reach it; the body that
// follows the headers is bounded by ctx alone (logs stream).
func (c *Client) send(ctx context.Context, method, path string, body []byte, wait time.Duration) (*http.Response, error) {
	return c.sendUpgrade(ctx, method, path, body, wait, "")
}

// sendUpgrade is send, asking to switch the connection to the protocol
// upgrade when it is set (exec, port-forward).
func (c *Client) sendUpgrade(ctx context.Context, method, path string, body []byte, wait time.Duration, upgrade string) (*http.Response, error) {
	if len(c.servers) == 0 {
		return nil, errors.New("api: no server configured")
	}
	first := int(c.next.Load())
	var errs []error
	for i := range c.servers {
		n := (first + i) % len(c.servers)
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		actx, cancel := context.WithCancel(ctx)
		answered := func() bool { return true }
		if wait != untilDone {
			answered = time.AfterFunc(c.answer+wait, cancel).Stop
		}
		req, err := http.NewRequestWithContext(actx, method, c.servers[n]+path, rd)
		if err != nil {
			cancel()
			return nil, err
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if upgrade != "" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", upgrade)
		}
		resp, err := c.http.Do(req)
		if err == nil && answered() {
			c.next.Store(int32(n))
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		if err == nil { // the timer fired as the headers came
			resp.Body.Close()
			err = context.DeadlineExceeded
		}
		cancel()
		if ctx.Err() != nil {
			return nil, err
		}
		if actx.Err() != nil {
			err = fmt.Errorf("%s did not answer within %s: %w", c.servers[n], c.answer+wait, err)
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// cancelOnClose ends a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	defer b.cancel()
	return b.ReadCloser.Close()
}

// Error is an API error response.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Watch asks a GET to block until the state is newer than Index, for at
// most Wait.
type Watch struct {
	Index uint64
	Wait  time.Duration
}

func (c *Client) do(ctx context.Context, method, path string, w *Watch, body, out any) (uint64, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	watched := path
	if w != nil {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		q := url.Values{"index": {strconv.FormatUint(w.Index, 10)}, "wait": {w.Wait.String()}}
		c.mu.Lock()
		if a, ok := c.seen[watched]; ok && a.index == w.Index && a.hash != "" {
			q.Set("hash", a.hash)
		}
		c.mu.Unlock()
		path += sep + q.Encode()
	}
	var wait time.Duration
	if w != nil {
		wait = w.Wait
	}
	resp, err := c.send(ctx, method, path, b, wait)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	index, _ := strconv.ParseUint(resp.Header.Get("X-Berth-Index"), 10, 64)
	if resp.StatusCode >= 300 {
		return index, responseError(resp)
	}
	if w != nil {
		c.mu.Lock()
		if c.seen == nil {
			c.seen = map[string]seenAnswer{}
		}
		c.seen[watched] = seenAnswer{index: index, hash: resp.Header.Get("X-Berth-Hash")}
		c.mu.Unlock()
	}
	if out == nil {
		return index, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return index, fmt.Errorf("decoding %s %s: %w", method, path, err)
	}
	return index, nil
}

func get[T any](ctx context.Context, c *Client, path string, w *Watch) (T, uint64, error) {
	var v T
	idx, err := c.do(ctx, http.MethodGet, path, w, nil, &v)
	return v, idx, err
}

func (c *Client) Status(ctx context.Context) (Status, error) {
	v, _, err := get[Status](ctx, c, "/v1/status", nil)
	return v, err
}

// WatchStatus is Status as a blocking query: it answers once the state is
// past w.Index (any change), which is what a live view waits on.
func (c *Client) WatchStatus(ctx context.Context, w *Watch) (Status, uint64, error) {
	return get[Status](ctx, c, "/v1/status", w)
}

func (c *Client) Revisions(ctx context.Context) ([]RevisionSummary, error) {
	v, _, err := get[[]RevisionSummary](ctx, c, "/v1/revisions", nil)
	return v, err
}

func (c *Client) Nodes(ctx context.Context) ([]state.Node, error) {
	v, _, err := get[[]state.Node](ctx, c, "/v1/nodes", nil)
	return v, err
}

// Pods lists pods; node filters to one node's when non-empty.
func (c *Client) Pods(ctx context.Context, node string, w *Watch) ([]state.Pod, uint64, error) {
	path := "/v1/pods"
	if node != "" {
		path += "?node=" + url.QueryEscape(node)
	}
	return get[[]state.Pod](ctx, c, path, w)
}

func (c *Client) Deployments(ctx context.Context) ([]DeploymentStatus, error) {
	v, _, err := get[[]DeploymentStatus](ctx, c, "/v1/deployments", nil)
	return v, err
}

func (c *Client) Services(ctx context.Context, w *Watch) ([]reconcile.ServiceView, uint64, error) {
	return get[[]reconcile.ServiceView](ctx, c, "/v1/services", w)
}

// NodePods is an agent's watch on what it should run.
func (c *Client) NodePods(ctx context.Context, node string, w *Watch) (NodeAssignment, uint64, error) {
	return get[NodeAssignment](ctx, c, "/v1/nodes/"+url.PathEscape(node)+"/pods", w)
}

// RegisterNode adds or updates the node and returns it as the masters keep
// it, with its pod CIDR.
func (c *Client) RegisterNode(ctx context.Context, n state.Node) (state.Node, error) {
	var out state.Node
	_, err := c.do(ctx, http.MethodPost, "/v1/nodes", nil, n, &out)
	return out, err
}

// DeleteNode removes a node and the pods bound to it (admin).
func (c *Client) DeleteNode(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/nodes/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// SetNodeScheduling cordons (Unschedulable), drains (Drain) or uncordons
// (neither) a node, and returns it as changed.
func (c *Client) SetNodeScheduling(ctx context.Context, u state.NodeScheduling) (state.Node, error) {
	var n state.Node
	_, err := c.do(ctx, http.MethodPut, "/v1/nodes/"+url.PathEscape(u.Name)+"/scheduling", nil, u, &n)
	return n, err
}

// Heartbeat tells the masters the node is alive, and what it reports of
// itself.
func (c *Client) Heartbeat(ctx context.Context, node string, hb Heartbeat) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(node)+"/heartbeat", nil, hb, nil)
	return err
}

func (c *Client) SetPodStatus(ctx context.Context, namespace, name string, st state.PodStatus) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/pods/"+url.PathEscape(namespace)+"/"+url.PathEscape(name)+"/status", nil, st, nil)
	return err
}

// Events lists the event log, oldest first, filtered by f.
func (c *Client) Events(ctx context.Context, f EventFilter, w *Watch) ([]state.Event, uint64, error) {
	q := url.Values{}
	for k, v := range map[string]string{"namespace": f.Namespace, "kind": f.Kind, "name": f.Name} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return get[[]state.Event](ctx, c, path, w)
}

// RecordEvents reports an agent's events about its node and its pods.
func (c *Client) RecordEvents(ctx context.Context, node string, events []state.Event) (EventReportResult, error) {
	var out EventReportResult
	_, err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(node)+"/events", nil, EventReport{Events: events}, &out)
	return out, err
}

// Logs copies a container's log to w; with follow it goes on until ctx
// ends or the container is gone. The master relays it from the pod's node.
func (c *Client) Logs(ctx context.Context, namespace, name, container string, follow bool, w io.Writer) error {
	q := url.Values{}
	if container != "" {
		q.Set("container", container)
	}
	if follow {
		q.Set("follow", "true")
	}
	path := "/v1/pods/" + url.PathEscape(namespace) + "/" + url.PathEscape(name) + "/logs?" + q.Encode()
	wait := time.Duration(0)
	if follow {
		wait = untilDone
	}
	err := c.copyTo(ctx, path, wait, w)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// untilDone waives the answer timeout: a followed log of a quiet container
// sends nothing, not even its headers, until it writes a line.
const untilDone time.Duration = -1

// snapshotWait is how long a master may take to start sending a snapshot,
// or to restore one.
const snapshotWait = 10 * time.Minute

// copyTo streams a GET's body to w; the master may take wait to start.
func (c *Client) copyTo(ctx context.Context, path string, wait time.Duration, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil, wait)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return responseError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

func (c *Client) DeletePod(ctx context.Context, namespace, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/pods/"+url.PathEscape(namespace)+"/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// ForgetClaim tells the masters a released claim's data are deleted.
func (c *Client) ForgetClaim(ctx context.Context, namespace, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/claims/"+url.PathEscape(namespace)+"/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// responseError reads an error response: {"error": "..."} or plain text.
func responseError(resp *http.Response) error {
	var e struct{ Error string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b))
	}
	return &Error{Code: resp.StatusCode, Message: e.Error}
}

// JoinMaster asks for a master's certificate with a master join token.
func (c *Client) JoinMaster(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	return c.join(ctx, "/v1/join/master", req)
}

// JoinAgent asks for a node's certificate with an agent join token.
func (c *Client) JoinAgent(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	return c.join(ctx, "/v1/join/agent", req)
}

// joinAttempts bounds how often a join is sent again after a 503.
const joinAttempts = 5

// join sends req until it is answered, a few times over a 503: a leader
// change while the join committed may have counted it against its token,
// and the master counts the same request (the same key) once, so only
// sending it again gets the answer that was lost.
func (c *Client) join(ctx context.Context, path string, req JoinRequest) (JoinResponse, error) {
	var out JoinResponse
	attempt := 0
	err := retry.Until(ctx, retry.Backoff{Base: 250 * time.Millisecond, Max: 2 * time.Second}, func() error {
		attempt++
		_, err := c.do(ctx, http.MethodPost, path, nil, req, &out)
		var e *Error
		if err != nil && (attempt == joinAttempts || !errors.As(err, &e) || e.Code != http.StatusServiceUnavailable) {
			return retry.Permanent(err)
		}
		return err
	}, nil)
	return out, err
}

// AddMember adds the calling master (its client certificate) to Raft.
func (c *Client) AddMember(ctx context.Context, req MemberRequest) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/members", nil, req, nil)
	return err
}

func (c *Client) RemoveMember(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/members/"+url.PathEscape(id), nil, nil, nil)
	return err
}

func (c *Client) Members(ctx context.Context) ([]Member, error) {
	v, _, err := get[[]Member](ctx, c, "/v1/members", nil)
	return v, err
}

func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (NewToken, error) {
	var out NewToken
	_, err := c.do(ctx, http.MethodPost, "/v1/tokens", nil, req, &out)
	return out, err
}

func (c *Client) Tokens(ctx context.Context) ([]auth.Token, error) {
	v, _, err := get[[]auth.Token](ctx, c, "/v1/tokens", nil)
	return v, err
}

// WhoAmI says who the API takes this client for: its token's role and ID
// (or its certificate's role and name).
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	v, _, err := get[WhoAmI](ctx, c, "/v1/whoami", nil)
	return v, err
}

func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// SaveSnapshot streams a snapshot of the cluster state to w.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) error {
	return c.copyTo(ctx, "/v1/snapshot", snapshotWait, w)
}

// RestoreSnapshot replaces the whole cluster state with a saved snapshot.
func (c *Client) RestoreSnapshot(ctx context.Context, snapshot []byte) error {
	resp, err := c.send(ctx, http.MethodPut, "/v1/snapshot", snapshot, snapshotWait)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return responseError(resp)
	}
	return nil
}

// Rollout is where one workload's rollout stands; kind is deployments,
// statefulsets or daemonsets.
func (c *Client) Rollout(ctx context.Context, kind, namespace, name string, w *Watch) (reconcile.RolloutView, uint64, error) {
	return get[reconcile.RolloutView](ctx, c, rolloutPath(kind, namespace, name), w)
}

// RolloutHistory lists the kept revisions that changed one workload,
// oldest first.
func (c *Client) RolloutHistory(ctx context.Context, kind, namespace, name string) ([]reconcile.HistoryEntry, error) {
	v, _, err := get[[]reconcile.HistoryEntry](ctx, c, rolloutPath(kind, namespace, name)+"/history", nil)
	return v, err
}

func rolloutPath(kind, namespace, name string) string {
	return "/v1/rollouts/" + url.PathEscape(kind) + "/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}
