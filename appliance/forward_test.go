package appliance

import (
	"net/http"
	"runtime"
	"testing"
	"time"
)

// Reads a follower relays to the leader (?consistent=true) share one
// transport: before, each built its own and left its connection and three
// goroutines behind, so a master's goroutines grew with every such read.
func TestForwardedReadsDoNotLeak(t *testing.T) {
	m0, m1 := leaderAndFollower(t, &Config{})
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
