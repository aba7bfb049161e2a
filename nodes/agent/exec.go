package agent

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/containerd/errdefs"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/nodes/runtime"
)

// Bounds on the sessions (exec, port-forward) a node serves.
const (
	// maxSessions is how many may be open at once; one more is a 429.
	maxSessions = 32
	// sessionIdle closes a session nothing has gone through for so long,
	// as the kubelet's streaming-connection-idle-timeout does (its 4 h
	// default is more than a small cluster needs).
	sessionIdle = 30 * time.Minute
	// dialTimeout bounds reaching a pod's port.
	dialTimeout = 5 * time.Second
	// usageWindow is what CPU use is averaged over.
	usageWindow = time.Second
)

// openSession takes a session token; when the node has maxSessions open it
// answers 429 and returns false.
func (a *Agent) openSession(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case a.sessions <- struct{}{}:
		return func() { <-a.sessions }, true
	default:
		http.Error(w, fmt.Sprintf("this node has %d exec and port-forward sessions open; try again later", maxSessions), http.StatusTooManyRequests)
		return nil, false
	}
}

// wantsUpgrade answers 400 and returns false unless the request asks to
// switch to proto.
func wantsUpgrade(w http.ResponseWriter, r *http.Request, proto string) bool {
	if !httpserve.Wants(r, proto) {
		http.Error(w, "send Connection: Upgrade and Upgrade: "+proto, http.StatusBadRequest)
		return false
	}
	return true
}

// exec runs a command in a pod's container for `berth exec`: the
// connection switches to api.ProtoExec, stdin and resizes come in as
// frames, output goes out as frames, and the exit code ends it.
func (a *Agent) exec(w http.ResponseWriter, r *http.Request) {
	rt := a.fromMaster(w, r, "exec")
	if rt == nil {
		return
	}
	p, ref, code, err := a.pathPod(r)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	o, err := api.ParseExecOptions(r.URL.RawQuery)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	container, err := p.LogContainer(o.Container)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !wantsUpgrade(w, r, api.ProtoExec) {
		return
	}
	release, ok := a.openSession(w)
	if !ok {
		return
	}
	defer release()
	conn, err := httpserve.Upgrade(w, api.ProtoExec, sessionIdle)
	if err != nil {
		a.log.Warn("exec: switching protocols", "err", err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	var mu sync.Mutex
	s := runtime.Streams{Stdout: &api.FrameWriter{Mu: &mu, W: conn, Ch: api.ChanStdout},
		Stderr: &api.FrameWriter{Mu: &mu, W: conn, Ch: api.ChanStderr}, TTY: o.TTY}
	var stdin *io.PipeWriter
	if o.Stdin {
		var pr *io.PipeReader
		pr, stdin = io.Pipe()
		// Ends the runtime's copy of stdin once the command is done.
		defer pr.Close()
		s.Stdin = pr
	}
	resize := make(chan runtime.TermSize, 1)
	if o.TTY {
		s.Resize = resize
	}
	go func() {
		// The client going away, or breaking the protocol, ends the
		// command: it is killed with the context.
		defer cancel()
		if err := readClient(conn, stdin, resize); err != nil && ctx.Err() == nil {
			a.log.Info("exec: client stream ended", "pod", ref, "err", err)
		}
	}()
	exit, err := rt.ExecStreams(ctx, ref, container, o.Command, s)
	mu.Lock()
	defer mu.Unlock()
	switch {
	case err == nil:
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(int32(exit)))
		_ = api.WriteFrame(conn, api.ChanExit, b[:])
	case ctx.Err() != nil:
		// The client is gone: no one to tell.
	case errors.Is(err, runtime.ErrExecStart):
		_ = api.WriteFrame(conn, api.ChanError, []byte(truncateMessage(err.Error())))
	case errdefs.IsNotFound(err):
		_ = api.WriteFrame(conn, api.ChanError, fmt.Appendf(nil, "container %q of pod %s is not running", container, p.Key()))
	default:
		a.log.Warn("exec", "pod", ref, "container", container, "err", err)
		_ = api.WriteFrame(conn, api.ChanError, []byte("exec failed; the node's agent log has the details"))
	}
}

// readClient feeds the client's frames to the command until the client
// ends; stdin is nil when the command takes none.
func readClient(conn io.Reader, stdin *io.PipeWriter, resize chan runtime.TermSize) error {
	buf := make([]byte, api.MaxFrame)
	for {
		ch, p, err := api.ReadFrame(conn, buf)
		if err != nil {
			return err
		}
		switch {
		case ch == api.ChanStdin && stdin != nil && len(p) == 0:
			stdin.Close()
		case ch == api.ChanStdin && stdin != nil:
			// Blocks until the command reads it: the client waits, the
			// agent holds one frame.
			if _, err := stdin.Write(p); err != nil {
				return nil // the command is done with its input
			}
		case ch == api.ChanResize && len(p) == 4:
			sz := runtime.TermSize{Width: binary.BigEndian.Uint16(p), Height: binary.BigEndian.Uint16(p[2:])}
			// Only the latest size matters.
			select {
			case <-resize:
			default:
			}
			resize <- sz
		default:
			return fmt.Errorf("unexpected frame on channel %d (%d bytes)", ch, len(p))
		}
	}
}

// truncateMessage keeps an error frame readable.
func truncateMessage(s string) string {
	if len(s) > 1024 {
		return s[:1024] + "..."
	}
	return s
}

// portForward connects the client to a port of the pod, for `berth
// port-forward`: the connection switches to api.ProtoPortForward and then
// carries that TCP connection's bytes.
func (a *Agent) portForward(w http.ResponseWriter, r *http.Request) {
	if a.fromMaster(w, r, "port-forward") == nil {
		return
	}
	p, ref, code, err := a.pathPod(r)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	port, err := portQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !wantsUpgrade(w, r, api.ProtoPortForward) {
		return
	}
	// The pod's address as this agent reported it: the network is the
	// node's own.
	ip := p.Status.IP
	if ip == "" {
		http.Error(w, fmt.Sprintf("pod %s has no IP address yet", p.Key()), http.StatusConflict)
		return
	}
	release, ok := a.openSession(w)
	if !ok {
		return
	}
	defer release()
	d := net.Dialer{Timeout: dialTimeout}
	up, err := d.DialContext(r.Context(), "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		a.log.Info("port-forward: dialing the pod", "pod", ref, "port", port, "err", err)
		http.Error(w, fmt.Sprintf("pod %s does not accept connections on port %d", p.Key(), port), http.StatusBadGateway)
		return
	}
	conn, err := httpserve.Upgrade(w, api.ProtoPortForward, sessionIdle)
	if err != nil {
		up.Close()
		a.log.Warn("port-forward: switching protocols", "err", err)
		return
	}
	httpserve.Pipe(conn, up)
}

// portQuery is the one port a request names.
func portQuery(r *http.Request) (int, error) {
	q := r.URL.Query()
	if len(q) != 1 || len(q["port"]) != 1 {
		return 0, errors.New("give one port, and nothing else: ?port=N")
	}
	return api.ParsePort(q.Get("port"))
}

// usage reports the CPU (over usageWindow) and memory of the containers of
// the pods this node runs, for `berth top`: measured when asked, so an
// idle cluster reads nothing.
func (a *Agent) usage(w http.ResponseWriter, r *http.Request) {
	rt := a.fromMaster(w, r, "usage")
	if rt == nil {
		return
	}
	if len(r.URL.Query()) != 0 {
		http.Error(w, "this route takes no parameters", http.StatusBadRequest)
		return
	}
	first, start, err := a.readUsage(r.Context(), rt)
	if err == nil {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(usageWindow):
		}
	}
	var second []runtime.ContainerUsage
	var end time.Time
	if err == nil {
		second, end, err = a.readUsage(r.Context(), rt)
	}
	if err != nil {
		a.log.Warn("reading container usage", "err", err)
		http.Error(w, "reading usage failed; the node's agent log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(usageRates(first, second, end.Sub(start)))
}

// readUsage reads the containers' usage, of the pods this agent runs only.
func (a *Agent) readUsage(ctx context.Context, rt Runtime) ([]runtime.ContainerUsage, time.Time, error) {
	all, err := rt.Usage(ctx)
	now := time.Now()
	var out []runtime.ContainerUsage
	for _, u := range all {
		if _, ref, ok := a.pod(u.Pod.Namespace, u.Pod.Name); ok && ref == u.Pod {
			out = append(out, u)
		}
	}
	return out, now, err
}

// usageRates turns two readings d apart into CPU rates; a container seen
// only in the second (just started) counts from zero.
func usageRates(first, second []runtime.ContainerUsage, d time.Duration) []api.ContainerUsage {
	type key struct {
		pod       runtime.PodRef
		container string
	}
	before := map[key]uint64{}
	for _, u := range first {
		before[key{u.Pod, u.Container}] = u.CPUNanos
	}
	out := []api.ContainerUsage{}
	for _, u := range second {
		cpu := int64(0)
		if b := before[key{u.Pod, u.Container}]; u.CPUNanos > b && d > 0 {
			cpu = int64(float64(u.CPUNanos-b) / float64(d.Nanoseconds()) * 1000)
		}
		out = append(out, api.ContainerUsage{Namespace: u.Pod.Namespace, Pod: u.Pod.Name, Container: u.Container,
			CPUMilli: cpu, MemoryBytes: int64(u.WorkingSet)})
	}
	return out
}
