package appliance

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Reads a follower relays to the leader (?consistent=true) share one
// transport: before, each built its own and left its connection and three
// goroutines behind, so a master's goroutines grew with every such read.
func TestForwardedReadsDoNotLeak(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	data := t.TempDir()
	m0, err := Start(ctx, Config{Name: "m0", DataDir: data, Listen: "127.0.0.1:0", RaftListen: freeAddr(t), Bootstrap: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m0.Close()
	b, err := os.ReadFile(filepath.Join(data, "join-master.token"))
	if err != nil {
		t.Fatal(err)
	}
	m1, err := Start(ctx, Config{Name: "m1", DataDir: t.TempDir(), Listen: "127.0.0.1:0", RaftListen: freeAddr(t),
		Join: m0.URL(), Token: strings.TrimSpace(string(b)), CAHash: m0.CAHash(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	eventually(t, "the follower knowing the leader", func() bool { return cluster{m1}.LeaderURL() == m0.URL() })

	c := m1.HTTPClient()
	read := func() {
		req, _ := http.NewRequest(http.MethodGet, m1.URL()+"/v1/revisions?consistent=true", nil)
		req.Header.Set("Authorization", "Bearer "+m0.AdminToken())
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("consistent read through the follower: %s", resp.Status)
		}
	}
	for range 10 {
		read()
	}
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	const reads = 200
	for range reads {
		read()
	}
	time.Sleep(100 * time.Millisecond)
	if grown := runtime.NumGoroutine() - before; grown > 20 {
		t.Fatalf("%d consistent reads through a follower left %d more goroutines", reads, grown)
	}
}
