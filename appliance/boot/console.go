package boot

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Screen is the console: a status block redrawn when it changes, above
// the most recent log lines. It replaces the login prompt.
type Screen struct {
	mu     sync.Mutex
	lines  []string // recent log lines
	status string
	drawn  string
	outs   []*os.File
}

const logLines = 14

// NewScreen opens every active console (screen and serial port both, as
// the kernel's console= parameters name them).
func NewScreen() *Screen {
	s := &Screen{}
	b, _ := os.ReadFile("/sys/class/tty/console/active")
	for _, name := range strings.Fields(string(b)) {
		if f, err := os.OpenFile("/dev/"+name, os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
			s.outs = append(s.outs, f)
		}
	}
	if len(s.outs) == 0 {
		s.outs = []*os.File{os.Stdout}
	}
	return s
}

// Write takes log output (one slog record per call).
func (s *Screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		s.lines = append(s.lines, l)
	}
	if len(s.lines) > logLines {
		s.lines = s.lines[len(s.lines)-logLines:]
	}
	s.mu.Unlock()
	s.draw()
	return len(p), nil
}

// SetStatus replaces the status block.
func (s *Screen) SetStatus(text string) {
	s.mu.Lock()
	s.status = text
	s.mu.Unlock()
	s.draw()
}

func (s *Screen) draw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	b.WriteString(s.status)
	b.WriteString("\n---- log ----\n")
	for _, l := range s.lines {
		b.WriteString(l)
		b.WriteString("\n")
	}
	text := b.String()
	if text == s.drawn {
		return
	}
	s.drawn = text
	// Home, clear: a fresh screen each time on a terminal; on a serial log
	// it reads as successive snapshots.
	out := "\x1b[H\x1b[2J" + strings.ReplaceAll(text, "\n", "\r\n")
	for _, f := range s.outs {
		f.WriteString(out)
	}
}

// Facts is what the status block shows; boot fills it in as it goes, so
// it is changed with update and read through a snapshot.
type Facts struct {
	mu        sync.Mutex
	Version   string
	Addresses []string
	Listen    string
	Storage   string // "disk /dev/vda" or the RAM warning
	RAM       bool
	Token     string // shown only when generated on this boot's RAM disk or first boot
	CAHash    string // what agents and joining masters pin
	Problem   string
	Status    func(ctx context.Context) (role, revision, sync string, err error)
}

// ramBanner is repeated so it cannot be missed.
const ramBanner = "!!! NO DATA DISK: RUNNING FROM RAM. ALL CLUSTER STATE IS LOST ON REBOOT !!!"

// Run redraws the status block every two seconds until ctx ends.
func (s *Screen) Run(ctx context.Context, f *Facts) {
	for {
		s.SetStatus(render(ctx, f))
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (f *Facts) update(fn func(*Facts)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *Facts) snapshot() Facts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Facts{Version: f.Version, Addresses: f.Addresses, Listen: f.Listen, Storage: f.Storage,
		RAM: f.RAM, Token: f.Token, CAHash: f.CAHash, Problem: f.Problem, Status: f.Status}
}

func render(ctx context.Context, facts *Facts) string {
	f := facts.snapshot()
	var b strings.Builder
	fmt.Fprintf(&b, "berth appliance %s — master\n\n", f.Version)
	if f.RAM {
		fmt.Fprintf(&b, "%s\n%s\n\n", ramBanner, ramBanner)
	}
	port := f.Listen
	if i := strings.LastIndex(port, ":"); i >= 0 {
		port = port[i+1:]
	}
	if len(f.Addresses) == 0 {
		fmt.Fprintf(&b, "  address   (none yet: waiting for DHCP)\n")
	}
	for _, a := range f.Addresses {
		fmt.Fprintf(&b, "  API       https://%s:%s\n", a, port)
	}
	fmt.Fprintf(&b, "  storage   %s\n", f.Storage)
	if f.Token != "" {
		fmt.Fprintf(&b, "  token     %s\n", f.Token)
	}
	if f.CAHash != "" {
		fmt.Fprintf(&b, "  ca        %s\n", f.CAHash)
	}
	if f.Problem != "" {
		fmt.Fprintf(&b, "  PROBLEM   %s\n", f.Problem)
	}
	if f.Status != nil {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		role, rev, sync, err := f.Status(sctx)
		cancel()
		if err != nil {
			fmt.Fprintf(&b, "  master    %v\n", err)
		} else {
			fmt.Fprintf(&b, "  role      %s\n  revision  %s\n  sync      %s\n", role, rev, sync)
		}
	}
	return b.String()
}

// newLogger logs to the screen.
func newLogger(w *Screen) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.String("time", a.Value.Time().UTC().Format("15:04:05"))
		}
		return a
	}}))
}
