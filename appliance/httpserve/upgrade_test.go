package httpserve

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestUpgrade: a switched connection outlives the server's request
// timeouts, carries bytes both ways through Pipe, and is closed once
// nothing has gone through it for its idle timeout, which ends the pipe.
func TestUpgrade(t *testing.T) {
	const idle = 4 * 300 * time.Millisecond // well over short's timeouts
	piped := make(chan struct{})
	addr, tc := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Wants(r, "echo/1") {
			http.Error(w, "want echo/1", http.StatusBadRequest)
			return
		}
		u, err := Upgrade(w, "echo/1", idle)
		if err != nil {
			t.Error(err)
			return
		}
		a, b := net.Pipe()
		go io.Copy(b, b)
		Pipe(u, a)
		close(piped)
	}), short)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}

	resp, err := client.Get("https://" + addr + "/")
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("without Upgrade: %v %v, want 400", resp.Status, err)
	}
	resp.Body.Close()

	req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/", nil)
	req.Header.Set("Connection", "keep-alive, Upgrade")
	req.Header.Set("Upgrade", "echo/1")
	start := time.Now()
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo/1" {
		t.Fatalf("upgrade: %v %v", resp.Status, err)
	}
	conn := resp.Body.(io.ReadWriteCloser)
	defer conn.Close()
	io.WriteString(conn, "ping")
	b := make([]byte, 4)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q %v", b, err)
	}
	// Quiet from now on: the read ends when the server closes, after the
	// idle timeout and not at the server's shorter request timeouts.
	n, _ := io.Copy(io.Discard, conn)
	if took := time.Since(start); n != 0 || took < idle || took > idle+5*time.Second {
		t.Errorf("closed after %s with %d more bytes, want after the %s idle timeout", took, n, idle)
	}
	select {
	case <-piped:
	case <-time.After(5 * time.Second):
		t.Error("the pipe went on after the connection closed")
	}
}
