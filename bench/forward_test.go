package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance"
)

// BenchmarkForwardedReads sends b.N consistent reads to a follower, which
// relays each to the leader, and reports the goroutines and the resident
// memory of the process (both masters) that stay after them: relaying
// must not leave anything behind per read.
//
//	go test ./bench/ -run '^$' -bench ForwardedReads -benchtime 10000x
func BenchmarkForwardedReads(b *testing.B) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	data := b.TempDir()
	m0, err := appliance.Start(ctx, appliance.Config{Name: "m0", DataDir: data, Listen: "127.0.0.1:0", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(b)), Bootstrap: true, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer m0.Close()
	token, err := os.ReadFile(filepath.Join(data, "join-master.token"))
	if err != nil {
		b.Fatal(err)
	}
	m1, err := appliance.Start(ctx, appliance.Config{Name: "m1", DataDir: b.TempDir(), Listen: "127.0.0.1:0", RaftListen: fmt.Sprintf("127.0.0.1:%d", freePort(b)),
		Join: m0.URL(), Token: strings.TrimSpace(string(token)), CAHash: m0.CAHash(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer m1.Close()
	c := m1.HTTPClient()
	read := func() error {
		req, _ := http.NewRequest(http.MethodGet, m1.URL()+"/v1/revisions?consistent=true", nil)
		req.Header.Set("Authorization", "Bearer "+m0.AdminToken())
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("read %d: %s", b.N, resp.Status)
		}
		return nil
	}
	for deadline := time.Now().Add(10 * time.Second); read() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the follower never relayed a read")
		}
	}
	runtime.GC()
	g0 := runtime.NumGoroutine()
	b.ResetTimer()
	for i := range b.N {
		if err := read(); err != nil {
			b.Fatalf("read %d of %d: %v", i+1, b.N, err)
		}
	}
	b.StopTimer()
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	b.ReportMetric(float64(runtime.NumGoroutine()-g0), "goroutines-added")
	b.ReportMetric(float64(rssBytes())/(1<<20), "rss-MiB")
}

// rssBytes is this process's resident memory, from /proc.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident int64
	fmt.Sscan(string(b), &size, &resident)
	return resident * int64(os.Getpagesize())
}
