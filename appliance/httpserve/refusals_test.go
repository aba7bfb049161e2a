package httpserve

import (
	"bytes"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink written by the timer's goroutine too.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A flood of refusals gives the first line at once and then one summary
// per period that counts the rest: none is lost, and the lines are few.
func TestRefusalLogIsBounded(t *testing.T) {
	var out syncBuffer
	const every = 100 * time.Millisecond
	l := &RefusalLog{Log: slog.New(slog.NewTextHandler(&out, nil)), Msg: "refused", Every: every}
	start := time.Now()
	for i := range 500 {
		l.Refused("n", i)
	}
	if got := out.String(); !regexp.MustCompile(`msg=refused n=0\n$`).MatchString(got) {
		t.Fatalf("the first refusal was not logged at once: %q", got)
	}
	summary := regexp.MustCompile(`msg="refused: (\d+) more in the last 100ms" n=(\d+)`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		total := 1
		for _, m := range summary.FindAllStringSubmatch(out.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
		if total == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("summaries count %d refusals of 500:\n%s", total, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	lines := bytes.Count([]byte(out.String()), []byte("\n"))
	if max := 2 + int(time.Since(start)/every); lines > max {
		t.Errorf("%d lines for 500 refusals in %s, want at most %d", lines, time.Since(start), max)
	}
	if !regexp.MustCompile(`n=499\n$`).MatchString(out.String()) {
		t.Errorf("the summary does not describe the last refusal: %q", out.String())
	}
}
