package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/berth/berth/appliance/pki"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/store"
)

// storeValueSize is the payload of every write: the JSON of the command's
// object for berth, the value for etcd.
const storeValueSize = 256

// writeTarget is a replicated store under load: put commits one write of
// storeValueSize bytes from writer w and returns once it is committed.
type writeTarget interface {
	put(ctx context.Context, w int) error
	close()
}

// BenchmarkStore measures committed writes per second and their latency
// for berth's store (hashicorp/raft + raft-boltdb, Raft over mutual TLS,
// proposals made in-process on the leader) and for Debian's etcd 3.4
// (peer traffic over mutual TLS, writes through clientv3 to the leader's
// client URL, plain gRPC on loopback), with 1 and 3 members and 1 and 64
// concurrent writers. Both fsync every commit. Each etcd result carries
// the berth/etcd ratio of writes/s for the same shape. Run it with a count
// large enough for a p99:
//
//	go test ./bench/ -run '^$' -bench 'Store$' -benchtime 2000x
func BenchmarkStore(b *testing.B) {
	etcdBin := etcdBinary(b)
	ca := newBenchCA(b)
	for _, members := range []int{1, 3} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			results := map[string]loadResult{}
			for _, system := range []string{"berth", "etcd"} {
				b.Run(system, func(b *testing.B) {
					var target writeTarget
					if system == "berth" {
						target = startBerth(b, ca, members)
					} else {
						target = startEtcd(b, etcdBin, ca, members)
					}
					defer target.close()
					for _, writers := range []int{1, 64} {
						b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
							r := runLoad(b, target, writers)
							b.ReportMetric(r.perSec, "writes/s")
							b.ReportMetric(ms(r.p50), "p50-ms")
							b.ReportMetric(ms(r.p99), "p99-ms")
							results[fmt.Sprintf("%s writers=%d", system, writers)] = r
							// berth ran this shape just before.
							if berth, ok := results[fmt.Sprintf("berth writers=%d", writers)]; ok && system == "etcd" {
								b.ReportMetric(berth.perSec/r.perSec, "berth/etcd")
							}
						})
					}
				})
			}
		})
	}
}

type loadResult struct {
	perSec   float64
	p50, p99 time.Duration
}

// runLoad makes b.N writes from writers goroutines and times each.
func runLoad(b *testing.B, target writeTarget, writers int) loadResult {
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				start := time.Now()
				if err := target.put(ctx, w); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	return loadResult{perSec: float64(b.N) / b.Elapsed().Seconds(), p50: percentile(lat, 50), p99: percentile(lat, 99)}
}

// berthCluster is members berth stores in this process, Raft over mutual
// TLS on loopback, each with its own data dir, formed as `berth master`
// forms them: the first bootstraps, the others join through AddVoter.
type berthCluster struct {
	stores []*store.Store
	cfgs   []store.Config
	// batches[w] is writer w's proposal: one RegisterNode of its own node,
	// whose payload is storeValueSize bytes of JSON.
	batches [][]state.Command
}

func startBerth(b *testing.B, ca *benchCA, members int) *berthCluster {
	b.Helper()
	c := &berthCluster{}
	for i := range members {
		name := fmt.Sprintf("m%d", i+1)
		cfg := store.Config{
			DataDir: b.TempDir(), NodeID: name, BindAddr: "127.0.0.1:0", Bootstrap: i == 0,
			TLS: ca.tlsConfig(b, name), Logger: slog.New(slog.DiscardHandler),
		}
		s, err := store.Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.stores = append(c.stores, s)
		c.cfgs = append(c.cfgs, cfg)
	}
	waitBerthLeader(b, c.stores[:1])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, s := range c.stores[1:] {
		if err := c.stores[0].AddVoter(ctx, s.ID(), s.Addr()); err != nil {
			b.Fatal(err)
		}
		// Restarts (BenchmarkStoreFailover) come back on the same address.
		c.cfgs[i+1].BindAddr = s.Addr()
	}
	c.cfgs[0].BindAddr = c.stores[0].Addr()
	for w := range 64 {
		node := state.Node{Name: fmt.Sprintf("w%d", w), Labels: map[string]string{"pad": ""}}
		for {
			cmd := state.NewCommand(state.CmdRegisterNode, node)
			if len(cmd.Payload) >= storeValueSize {
				if len(cmd.Payload) != storeValueSize {
					b.Fatalf("payload of %d bytes", len(cmd.Payload))
				}
				c.batches = append(c.batches, []state.Command{cmd})
				break
			}
			node.Labels["pad"] += "x"
		}
	}
	return c
}

func (c *berthCluster) put(ctx context.Context, w int) error {
	_, err := c.stores[0].Propose(ctx, c.batches[w])
	return err
}

func (c *berthCluster) close() {
	for _, s := range c.stores {
		s.Close()
	}
}

// waitBerthLeader returns the store among stores that leads, within 10s.
func waitBerthLeader(b *testing.B, stores []*store.Store) *store.Store {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range stores {
			if s.IsLeader() {
				return s
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("no berth leader within 10s")
	return nil
}

// etcdCluster is members etcd processes on loopback, each with its own
// data dir, peers over mutual TLS with certificates of the same kind of
// CA as berth's, clients over plain gRPC.
type etcdCluster struct {
	bin   string
	dir   string
	procs []*exec.Cmd
	args  [][]string
	urls  []string // client URLs
	// cli talks to the leader's client URL only: a write sent to a
	// follower is forwarded to the leader, a hop berth's in-process
	// proposals do not make either.
	cli   *clientv3.Client
	value string
}

func etcdBinary(b *testing.B) string {
	b.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		b.Skip("etcd is not installed (Debian's etcd-server; test/setup.sh installs it)")
	}
	return bin
}

func freePort(b *testing.B) int {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startEtcd(b *testing.B, bin string, ca *benchCA, members int) *etcdCluster {
	b.Helper()
	c := &etcdCluster{bin: bin, dir: b.TempDir(), value: strings.Repeat("v", storeValueSize)}
	caFile := filepath.Join(c.dir, "ca.pem")
	writeSecret(b, caFile, ca.CertPEM)
	var peers, initial []string
	for i := range members {
		peers = append(peers, fmt.Sprintf("https://127.0.0.1:%d", freePort(b)))
		c.urls = append(c.urls, fmt.Sprintf("http://127.0.0.1:%d", freePort(b)))
		initial = append(initial, fmt.Sprintf("e%d=%s", i+1, peers[i]))
	}
	for i := range members {
		name := fmt.Sprintf("e%d", i+1)
		certFile, keyFile := ca.files(b, c.dir, name)
		c.args = append(c.args, []string{
			"--name", name,
			"--data-dir", filepath.Join(c.dir, name),
			"--listen-client-urls", c.urls[i], "--advertise-client-urls", c.urls[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--peer-cert-file", certFile, "--peer-key-file", keyFile,
			"--peer-trusted-ca-file", caFile, "--peer-client-cert-auth",
			"--logger", "zap", "--log-outputs", filepath.Join(c.dir, name+".log"),
		})
		c.procs = append(c.procs, nil)
		c.start(b, i)
	}
	cli, err := newEtcdClient(clientv3.Config{Endpoints: c.urls, DialTimeout: 5 * time.Second})
	if err != nil {
		c.close()
		b.Fatal(err)
	}
	leader := c.leader(b, cli, 20*time.Second)
	cli.Close()
	c.cli, err = newEtcdClient(clientv3.Config{Endpoints: []string{c.urls[leader]}, DialTimeout: 5 * time.Second})
	if err != nil {
		c.close()
		b.Fatal(err)
	}
	return c
}

// newEtcdClient keeps the client's retry warnings, one per failed attempt
// while a leader is down, out of the benchmark's output.
func newEtcdClient(cfg clientv3.Config) (*clientv3.Client, error) {
	cfg.Logger = zap.NewNop()
	return clientv3.New(cfg)
}

func (c *etcdCluster) start(b *testing.B, i int) {
	b.Helper()
	cmd := exec.Command(c.bin, c.args[i]...)
	cmd.Env = []string{} // no ETCD_* settings from the environment
	if err := cmd.Start(); err != nil {
		c.close()
		b.Fatal(err)
	}
	c.procs[i] = cmd
}

// leader returns the index of the member that leads, once every member
// that runs answers and agrees.
func (c *etcdCluster) leader(b *testing.B, cli *clientv3.Client, within time.Duration) int {
	b.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		leader := -1
		for i, u := range c.urls {
			if c.procs[i] == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, u)
			cancel()
			if err != nil || st.Leader == 0 {
				leader = -1
				break
			}
			if st.Header.MemberId == st.Leader {
				leader = i
			}
		}
		if leader >= 0 {
			return leader
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.close()
	b.Fatalf("no etcd leader within %v; logs in %s", within, c.dir)
	return -1
}

func (c *etcdCluster) put(ctx context.Context, w int) error {
	_, err := c.cli.Put(ctx, fmt.Sprintf("bench/w%d", w), c.value)
	return err
}

func (c *etcdCluster) kill(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGKILL)
		p.Wait()
		c.procs[i] = nil
	}
}

func (c *etcdCluster) close() {
	if c.cli != nil {
		c.cli.Close()
	}
	for i := range c.procs {
		c.kill(i)
	}
}

// BenchmarkStoreFailover times, per iteration, from stopping the leader of
// three members to the next write committed by the two others; the stopped
// member then restarts on its data dir and catches up before the next
// iteration. berth's leader is stopped in-process with Store.Close (its
// transport closes, nothing is handed over; this is not a kill -9 of a
// process, which the end-to-end tests do); etcd's leader process gets
// SIGKILL. berth's Raft times out a leader after 500 ms, etcd after its
// default 1 s election timeout.
//
//	go test ./bench/ -run '^$' -bench StoreFailover -benchtime 5x
func BenchmarkStoreFailover(b *testing.B) {
	ca := newBenchCA(b)
	b.Run("berth", func(b *testing.B) {
		c := startBerth(b, ca, 3)
		defer c.close()
		var times []time.Duration
		for range b.N {
			leader := waitBerthLeader(b, c.stores)
			li := indexOf(c.stores, leader)
			start := time.Now()
			leader.Close()
			survivors := append(append([]*store.Store{}, c.stores[:li]...), c.stores[li+1:]...)
			var committed uint64
			commitAny(b, func(ctx context.Context) error {
				for _, s := range survivors {
					index, err := s.Propose(ctx, c.batches[0])
					if err == nil {
						committed = index
						return nil
					}
				}
				return errors.New("no survivor took the write")
			})
			times = append(times, time.Since(start))
			s, err := store.Open(c.cfgs[li])
			if err != nil {
				b.Fatal(err)
			}
			c.stores[li] = s
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err = s.Wait(ctx, committed-1)
			cancel()
			if err != nil {
				b.Fatalf("restarted member did not catch up: %v", err)
			}
		}
		reportFailover(b, times)
	})
	b.Run("etcd", func(b *testing.B) {
		c := startEtcd(b, etcdBinary(b), ca, 3)
		defer c.close()
		all, err := newEtcdClient(clientv3.Config{Endpoints: c.urls, DialTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer all.Close()
		var times []time.Duration
		for range b.N {
			li := c.leader(b, all, 20*time.Second)
			start := time.Now()
			c.kill(li)
			var clis []*clientv3.Client
			for i, u := range c.urls {
				if i == li {
					continue
				}
				cli, err := newEtcdClient(clientv3.Config{Endpoints: []string{u}, DialTimeout: 5 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				clis = append(clis, cli)
			}
			commitAny(b, func(ctx context.Context) error {
				for _, cli := range clis {
					if _, err := cli.Put(ctx, "bench/failover", c.value); err == nil {
						return nil
					}
				}
				return errors.New("no survivor took the write")
			})
			times = append(times, time.Since(start))
			for _, cli := range clis {
				cli.Close()
			}
			// A restarted member reads the cluster from its data dir.
			c.start(b, li)
			c.leader(b, all, 30*time.Second)
		}
		reportFailover(b, times)
	})
}

// commitAny retries try, each attempt bounded, until a write commits or
// 30s pass.
func commitAny(b *testing.B, try func(ctx context.Context) error) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := try(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("no write committed within 30s of stopping the leader: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func reportFailover(b *testing.B, times []time.Duration) {
	b.ReportMetric(ms(percentile(times, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(times, 100)), "max-ms")
	b.Logf("stop of the leader to the next committed write: %v", times)
}

func indexOf(stores []*store.Store, s *store.Store) int {
	for i, x := range stores {
		if x == s {
			return i
		}
	}
	return -1
}

// benchCA is a throwaway cluster CA, as `berth master --bootstrap` makes
// one: ECDSA P-256, certificates for 127.0.0.1 usable as server and
// client.
// benchCA is a cluster CA as the masters have one; the berth stores use
// the same mutual TLS configuration the masters' Raft does.
type benchCA struct{ *pki.CA }

func newBenchCA(b *testing.B) *benchCA {
	b.Helper()
	ca, err := pki.NewCA("berth bench CA", 24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return &benchCA{ca}
}

func (ca *benchCA) leaf(b *testing.B, name string) (certPEM, keyPEM []byte) {
	b.Helper()
	certPEM, keyPEM, err := ca.IssueServer(name, []string{pki.OrgMasters}, []string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return certPEM, keyPEM
}

func (ca *benchCA) tlsConfig(b *testing.B, name string) *tls.Config {
	certPEM, keyPEM := ca.leaf(b, name)
	c, err := pki.MutualTLS(ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// files writes a certificate and key for name into dir, for etcd.
func (ca *benchCA) files(b *testing.B, dir, name string) (certFile, keyFile string) {
	certPEM, keyPEM := ca.leaf(b, name)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writeSecret(b, certFile, certPEM)
	writeSecret(b, keyFile, keyPEM)
	return certFile, keyFile
}

func writeSecret(b *testing.B, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
}
