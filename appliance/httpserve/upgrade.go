package httpserve

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Upgraded is a connection switched from HTTP to another protocol (exec,
// port-forward). It closes itself when nothing has gone either way for its
// idle timeout, as the kubelet's streaming-connection-idle-timeout does.
type Upgraded struct {
	conn  net.Conn
	rd    *bufio.Reader // holds what the client sent after the request
	idle  time.Duration
	timer *time.Timer
	once  sync.Once
}

// Upgrade answers 101 Switching Protocols to proto and takes the
// connection over from the server; the caller must Close it.
func Upgrade(w http.ResponseWriter, proto string, idle time.Duration) (*Upgraded, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	// The server's deadlines bound a request, not a session.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+proto+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	u := &Upgraded{conn: conn, rd: brw.Reader, idle: idle}
	u.timer = time.AfterFunc(idle, func() { u.Close() })
	return u, nil
}

// Wants reports whether r asks to switch to proto.
func Wants(r *http.Request, proto string) bool {
	return r.Header.Get("Upgrade") == proto && headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (u *Upgraded) Read(p []byte) (int, error) {
	n, err := u.rd.Read(p)
	if n > 0 {
		u.timer.Reset(u.idle)
	}
	return n, err
}

func (u *Upgraded) Write(p []byte) (int, error) {
	n, err := u.conn.Write(p)
	if n > 0 {
		u.timer.Reset(u.idle)
	}
	return n, err
}

// Close closes the connection; it may be called more than once.
func (u *Upgraded) Close() error {
	err := net.ErrClosed
	u.once.Do(func() {
		u.timer.Stop()
		err = u.conn.Close()
	})
	return err
}

// Pipe copies between a and b both ways until either side ends or fails,
// then closes both. It holds two fixed buffers, whatever goes through.
func Pipe(a, b io.ReadWriteCloser) {
	done := make(chan struct{}, 2)
	cp := func(dst io.Writer, src io.Reader) {
		_, _ = io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, make([]byte, 32<<10))
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	a.Close()
	b.Close()
	<-done
}

// onlyReader and onlyWriter hide ReadFrom and WriteTo, so that CopyBuffer
// uses its fixed buffer rather than what the connection types pick.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }
