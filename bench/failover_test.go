package bench

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/test/harness"
)

func loopbackAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BenchmarkFailover times, per iteration, from kill -9 of the leader of
// three `berth master` processes on loopback to the next write committed
// through the survivors (a token created with the admin token: a write
// that needs a leader). The killed master is started again and caught up
// between iterations, untimed. Run it with -benchtime 10x.
func BenchmarkFailover(b *testing.B) {
	env := rolloutEnv(b)
	var ms []*harness.Master
	for i := range 3 {
		ms = append(ms, env.NewMaster(b, fmt.Sprintf("m%d", i+1), harness.MasterOptions{Listen: loopbackAddr(b), RaftListen: loopbackAddr(b)}))
	}
	ms[0].Start("--bootstrap")
	for i, m := range ms[1:] {
		token := ms[0].JoinToken("join-master") // good for one join
		if i > 0 {
			token = ms[0].CreateToken("--role", "master-join")
		}
		m.Start("--join", ms[0].URL, "--token", token, "--ca-hash", ms[0].CAHash())
	}
	token := ms[0].AdminToken()
	ctx := context.Background()
	leaderOf := func(c *api.Client) *harness.Master {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			members, err := c.Members(ctx)
			if err != nil {
				continue
			}
			for _, mem := range members {
				for _, m := range ms {
					if mem.Leader && mem.ID == m.Name {
						return m
					}
				}
			}
		}
		b.Fatal("no leader within a minute")
		return nil
	}
	var took []time.Duration
	for b.Loop() {
		leader := leaderOf(ms[0].Client(token, ms[1], ms[2]))
		var survivors []*harness.Master
		for _, m := range ms {
			if m != leader {
				survivors = append(survivors, m)
			}
		}
		c := survivors[0].Client(token, survivors[1])
		leader.Kill()
		start := time.Now()
		for {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := c.CreateToken(wctx, api.TokenRequest{Role: "read-only", Description: "failover probe"})
			cancel()
			if err == nil {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("no write committed within a minute of the kill: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		leader.Start()
		b.StartTimer()
	}
	b.ReportMetric(float64(percentile(took, 50).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(percentile(took, 100).Milliseconds()), "max-ms")
}
