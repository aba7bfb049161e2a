package httpserve

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// One address may hold max connections; the next is closed at accept, a
// closed one frees its place, and other addresses are not affected.
func TestPerAddressLimit(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ln := limitPerAddress(raw, 3, &RefusalLog{Log: slog.New(slog.NewTextHandler(&logs, nil)), Msg: "too many"})
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// served reports whether the listener handed c to the server (which
	// greets) or closed it at once.
	served := func(c net.Conn) bool {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 2)
		_, err := io.ReadFull(c, b)
		if err != nil && strings.Contains(err.Error(), "timeout") {
			t.Fatal("neither served nor closed within 5s")
		}
		return err == nil
	}
	var first []net.Conn
	for i := range 3 {
		c := dial("127.0.0.1")
		if !served(c) {
			t.Fatalf("connection %d refused under the limit", i+1)
		}
		first = append(first, <-accepted)
	}
	if extra := dial("127.0.0.1"); served(extra) {
		t.Fatal("a fourth connection from one address was served")
	}
	if other := dial("127.0.0.2"); !served(other) {
		t.Fatal("another address was refused")
	}
	<-accepted
	first[0].Close()
	first[0].Close() // a second Close must not give back a second place
	if again := dial("127.0.0.1"); !served(again) {
		t.Fatal("a closed connection did not free its place")
	}
	<-accepted
	if extra := dial("127.0.0.1"); served(extra) {
		t.Fatal("a double Close freed two places")
	}
	if n := strings.Count(logs.String(), "too many"); n != 1 {
		t.Errorf("two refusals in a row logged %d lines, want 1 (the first at once):\n%s", n, logs.String())
	}
}
