package main

import (
	"bufio"
	"io"
	"testing"
	"time"
)

// pipe is a writer whose lines a test reads as they come.
type pipe struct {
	ch chan string
}

func newPipe() (*pipe, io.Writer) {
	r, w := io.Pipe()
	p := &pipe{ch: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.ch <- sc.Text()
		}
	}()
	return p, w
}

// lines waits for the next n lines.
func (p *pipe) lines(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		select {
		case l := <-p.ch:
			out = append(out, l)
		case <-time.After(10 * time.Second):
			t.Fatalf("waited for line %d of %d; got %q", len(out)+1, n, out)
		}
	}
	return out
}
