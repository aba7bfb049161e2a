package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/berth/berth/schemas/names"
)

// Exec and port-forward switch their HTTP/1.1 connection to one of these
// protocols (101 Switching Protocols), from the CLI to a master and from
// the master to the pod's agent; the master then copies bytes both ways.
// See docs/exec.md.
const (
	// ProtoExec carries frames (WriteFrame) both ways.
	ProtoExec = "berth-exec/1"
	// ProtoPortForward carries the bytes of one TCP connection, unframed.
	ProtoPortForward = "berth-portforward/1"
)

// Frame channels of ProtoExec.
const (
	ChanStdin  byte = 0 // client to agent; an empty frame is EOF
	ChanStdout byte = 1
	ChanStderr byte = 2
	ChanResize byte = 3 // client to agent: width, height (uint16 each, big-endian)
	ChanExit   byte = 4 // agent to client, last: the exit code (int32, big-endian)
	ChanError  byte = 5 // agent to client, last: why the command did not run
)

// MaxFrame bounds a frame's payload: what one side may make the other
// hold in memory at once.
const MaxFrame = 32 << 10

// frameHeader is the channel byte and the payload's length (uint32).
const frameHeader = 5

// WriteFrame writes one frame in one Write, so that writers sharing w under
// a lock never interleave.
func WriteFrame(w io.Writer, ch byte, p []byte) error {
	if len(p) > MaxFrame {
		return fmt.Errorf("frame of %d bytes is over the %d limit", len(p), MaxFrame)
	}
	b := make([]byte, frameHeader+len(p))
	b[0] = ch
	binary.BigEndian.PutUint32(b[1:], uint32(len(p)))
	copy(b[frameHeader:], p)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame into buf (at least MaxFrame long) and returns
// its channel and payload, a slice of buf.
func ReadFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxFrame || int(n) > len(buf) {
		return 0, nil, fmt.Errorf("frame of %d bytes is over the %d limit", n, MaxFrame)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return h[0], buf[:n], nil
}

// FrameWriter writes everything written to it as frames of one channel,
// split at MaxFrame; it shares its connection with others through mu.
type FrameWriter struct {
	Mu *sync.Mutex
	W  io.Writer
	Ch byte
}

func (f *FrameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxFrame)]
		f.Mu.Lock()
		err := WriteFrame(f.W, f.Ch, chunk)
		f.Mu.Unlock()
		if err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// ExecOptions say what to run, and how, in a pod's container.
type ExecOptions struct {
	// Container is empty for the pod's only container.
	Container string
	Command   []string
	// Stdin sends the caller's input; TTY runs the command on a terminal.
	Stdin, TTY bool
}

// Bounds on a command, which travels in the query string.
const (
	maxExecArgs  = 256
	maxExecBytes = 16 << 10
)

// Query encodes o as kubectl does: one command parameter per argument.
func (o ExecOptions) Query() url.Values {
	q := url.Values{"command": o.Command}
	if o.Container != "" {
		q.Set("container", o.Container)
	}
	if o.Stdin {
		q.Set("stdin", "true")
	}
	if o.TTY {
		q.Set("tty", "true")
	}
	return q
}

// ParseExecOptions checks an exec request's query: masters and agents
// both take nothing else.
func ParseExecOptions(raw string) (ExecOptions, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return ExecOptions{}, errors.New("malformed query string")
	}
	for k, v := range q {
		switch {
		case k != "command" && k != "container" && k != "stdin" && k != "tty":
			return ExecOptions{}, fmt.Errorf("unknown parameter %q (want command, container, stdin, tty)", k)
		case k != "command" && len(v) > 1:
			return ExecOptions{}, fmt.Errorf("give %s once", k)
		}
	}
	o := ExecOptions{Container: q.Get("container"), Command: q["command"]}
	if o.Container != "" {
		if err := names.DNSLabel(o.Container); err != nil {
			return ExecOptions{}, fmt.Errorf("the container name %w", err)
		}
	}
	if len(o.Command) == 0 || o.Command[0] == "" {
		return ExecOptions{}, errors.New("no command: give it as command=ARG, once per argument")
	}
	total := 0
	for _, a := range o.Command {
		total += len(a)
	}
	if len(o.Command) > maxExecArgs || total > maxExecBytes {
		return ExecOptions{}, fmt.Errorf("the command is over %d arguments or %d bytes", maxExecArgs, maxExecBytes)
	}
	for _, f := range []struct {
		name string
		v    *bool
	}{{"stdin", &o.Stdin}, {"tty", &o.TTY}} {
		if s := q.Get(f.name); s != "" {
			if *f.v, err = strconv.ParseBool(s); err != nil {
				return ExecOptions{}, fmt.Errorf("%s: want true or false", f.name)
			}
		}
	}
	return o, nil
}

// ParsePort checks a port number given as text.
func ParsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q: want a number from 1 to 65535", s)
	}
	return p, nil
}

// TermSize is a terminal's size in characters.
type TermSize struct{ Width, Height uint16 }

// ExecStreams wire a remote command to the caller. Stdin is read only
// when ExecOptions.Stdin is set; Resize only with TTY.
type ExecStreams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan TermSize
}

// Exec runs a command in a pod's container and returns its exit code. The
// master relays it to the pod's node; an error means it did not run, or
// the connection broke before it ended.
func (c *Client) Exec(ctx context.Context, namespace, pod string, o ExecOptions, s ExecStreams) (int, error) {
	conn, err := c.upgrade(ctx, podPath(namespace, pod, "exec")+"?"+o.Query().Encode(), ProtoExec)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	// An upgraded connection no longer heeds the request's context.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	var mu sync.Mutex
	if o.Stdin && s.Stdin != nil {
		go func() {
			// A write error ends this too: the connection is gone.
			if _, err := io.Copy(&FrameWriter{Mu: &mu, W: conn, Ch: ChanStdin}, s.Stdin); err == nil {
				mu.Lock()
				_ = WriteFrame(conn, ChanStdin, nil)
				mu.Unlock()
			}
		}()
	}
	if o.TTY && s.Resize != nil {
		go func() {
			for sz := range s.Resize {
				var b [4]byte
				binary.BigEndian.PutUint16(b[:], sz.Width)
				binary.BigEndian.PutUint16(b[2:], sz.Height)
				mu.Lock()
				err := WriteFrame(conn, ChanResize, b[:])
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	stdout, stderr := s.Stdout, s.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	buf := make([]byte, MaxFrame)
	for {
		ch, p, err := ReadFrame(conn, buf)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, fmt.Errorf("exec: the connection ended before the command did: %w", err)
		}
		switch ch {
		case ChanStdout:
			_, err = stdout.Write(p)
		case ChanStderr:
			_, err = stderr.Write(p)
		case ChanExit:
			if len(p) != 4 {
				return -1, errors.New("exec: malformed exit frame")
			}
			return int(int32(binary.BigEndian.Uint32(p))), nil
		case ChanError:
			return -1, fmt.Errorf("exec: %s", p)
		default:
			return -1, fmt.Errorf("exec: unexpected frame on channel %d", ch)
		}
		if err != nil {
			return -1, err
		}
	}
}

// PortForward opens a connection to port of a pod, through the master
// and the pod's node: what is written to it reaches the pod's port.
func (c *Client) PortForward(ctx context.Context, namespace, pod string, port int) (io.ReadWriteCloser, error) {
	return c.upgrade(ctx, podPath(namespace, pod, "portforward")+"?port="+strconv.Itoa(port), ProtoPortForward)
}

func podPath(namespace, pod, sub string) string {
	return "/v1/pods/" + url.PathEscape(namespace) + "/" + url.PathEscape(pod) + "/" + sub
}

// upgrade POSTs to path asking to switch to proto, and returns the
// connection once the master has.
func (c *Client) upgrade(ctx context.Context, path, proto string) (io.ReadWriteCloser, error) {
	resp, err := c.sendUpgrade(ctx, http.MethodPost, path, nil, 0, proto)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		if resp.StatusCode < 300 {
			return nil, fmt.Errorf("the master answered %s instead of switching to %s", resp.Status, proto)
		}
		return nil, responseError(resp)
	}
	body := resp.Body.(*cancelOnClose)
	rwc, ok := body.ReadCloser.(io.ReadWriteCloser)
	if !ok || resp.Header.Get("Upgrade") != proto {
		body.Close()
		return nil, fmt.Errorf("the master switched to %q, not %s", resp.Header.Get("Upgrade"), proto)
	}
	return &upgraded{ReadWriteCloser: rwc, body: body}, nil
}

// upgraded ends the request's context when the connection is closed.
type upgraded struct {
	io.ReadWriteCloser
	body io.Closer
}

func (u *upgraded) Close() error { return u.body.Close() }

// ContainerUsage is one container's use of CPU (over the sampling window)
// and memory (its working set), as its node measured it.
type ContainerUsage struct {
	Namespace   string `json:"namespace"`
	Pod         string `json:"pod"`
	Container   string `json:"container"`
	CPUMilli    int64  `json:"cpuMilli"`
	MemoryBytes int64  `json:"memoryBytes"`
}

// NodeUsage is what a node's agent measured: its pods' containers.
type NodeUsage struct {
	Node string `json:"node"`
	// Error says why the node did not answer; Containers is empty then.
	Error      string           `json:"error,omitempty"`
	Containers []ContainerUsage `json:"containers"`
}

// Top asks every node for its containers' usage; see docs/exec.md.
func (c *Client) Top(ctx context.Context) ([]NodeUsage, error) {
	v, _, err := get[[]NodeUsage](ctx, c, "/v1/top", nil)
	return v, err
}
