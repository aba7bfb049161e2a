package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	berthdns "github.com/berth/berth/nodes/dns"
)

// dnsServices is how many Services both DNS servers hold.
const dnsServices = 1000

// BenchmarkDNS measures queries/s and latency of berth's cluster DNS
// server (nodes/dns, in this process) next to dnsmasq serving the same
// names, both on loopback under dnsperf (Debian's dnsperf, one process,
// its default 100 queries outstanding over UDP), for two workloads:
//
//   - cluster: A queries for the 1,000 Services' names, which berth holds
//     as records and dnsmasq as an --addn-hosts file;
//   - external: A queries for 1,000 names outside the domain, which both
//     forward to one upstream this benchmark runs on loopback and answer
//     from their caches (a first pass through the names, untimed, fills
//     them).
//
// b.N is the number of passes through the 1,000 names. Each dnsmasq
// result carries berth/dnsmasq ratios of queries/s and p99 latency.
//
//	go test ./bench/ -run '^$' -bench 'DNS$' -benchtime 300x
func BenchmarkDNS(b *testing.B) {
	dnsperf := lookBinary(b, "dnsperf")
	dnsmasq := lookBinary(b, "dnsmasq")
	dir := b.TempDir()
	upstream := startDNSUpstream(b)

	var hosts, cluster, external strings.Builder
	svcs := benchServices()
	for i, s := range svcs {
		fmt.Fprintf(&hosts, "%s %s.%s.svc.cluster.local\n", s.ClusterIP, s.Name, s.Namespace)
		fmt.Fprintf(&cluster, "%s.%s.svc.cluster.local A\n", s.Name, s.Namespace)
		fmt.Fprintf(&external, "name-%d.example.com A\n", i)
	}
	files := map[string]string{}
	for name, text := range map[string]string{"hosts": hosts.String(), "cluster": cluster.String(), "external": external.String()} {
		files[name] = filepath.Join(dir, name)
		if err := os.WriteFile(files[name], []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}

	s, err := berthdns.New(berthdns.Config{Upstream: []string{upstream}})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Update(svcs, nil); err != nil {
		b.Fatal(err)
	}
	dnsmasqAddr, dnsmasqPID := startDnsmasq(b, dnsmasq, dir, files["hosts"], upstream)
	servers := map[string]string{"berth": serveBerthDNS(b, s), "dnsmasq": dnsmasqAddr}
	// The CPU time each server uses, whatever else runs on the machine:
	// berth's is this process's (the upstream idles once caches are warm).
	cpus := map[string]func() (user, sys time.Duration){
		"berth":   func() (time.Duration, time.Duration) { return pidCPU(os.Getpid()) },
		"dnsmasq": func() (time.Duration, time.Duration) { return pidCPU(dnsmasqPID) },
	}
	for _, workload := range []string{"cluster", "external"} {
		b.Run(workload, func(b *testing.B) {
			var berth dnsperfResult
			for _, system := range []string{"berth", "dnsmasq"} {
				b.Run(system, func(b *testing.B) {
					runDNSPerf(b, dnsperf, servers[system], files[workload], 1) // warm the cache
					user0, sys0 := cpus[system]()
					b.ResetTimer()
					r := runDNSPerf(b, dnsperf, servers[system], files[workload], b.N)
					b.StopTimer()
					user, sys := cpus[system]()
					perQuery := func(d time.Duration) float64 {
						return float64(d) / float64(time.Microsecond) / float64(b.N*dnsServices)
					}
					b.ReportMetric(perQuery(user-user0+sys-sys0), "cpu-µs/query")
					b.ReportMetric(perQuery(sys-sys0), "sys-µs/query")
					b.ReportMetric(r.qps, "queries/s")
					b.ReportMetric(ms(r.p50), "p50-ms")
					b.ReportMetric(ms(r.p99), "p99-ms")
					b.ReportMetric(float64(r.lost), "lost")
					if system == "berth" {
						berth = r
					} else {
						b.ReportMetric(berth.qps/r.qps, "berth/dnsmasq-qps")
						b.ReportMetric(float64(berth.p99)/float64(r.p99), "berth/dnsmasq-p99")
					}
				})
			}
		})
	}
}

// BenchmarkDNSUpdate measures the time from Update() to the new answer:
// b.N times, one of 1,000 Services gets a new ClusterIP, and a client on
// loopback asks for its name until it gets the new address.
//
//	go test ./bench/ -run '^$' -bench 'DNSUpdate' -benchtime 300x
func BenchmarkDNSUpdate(b *testing.B) {
	s, err := berthdns.New(berthdns.Config{})
	if err != nil {
		b.Fatal(err)
	}
	svcs := benchServices()
	if err := s.Update(svcs, nil); err != nil {
		b.Fatal(err)
	}
	addr := serveBerthDNS(b, s)
	c := &dns.Client{Timeout: 2 * time.Second}
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		svc := &svcs[i%len(svcs)]
		ip := fmt.Sprintf("10.97.%d.%d", i/250%250, i%250+1)
		svc.ClusterIP = ip
		q := new(dns.Msg)
		q.SetQuestion(svc.Name+"."+svc.Namespace+".svc.cluster.local.", dns.TypeA)
		start := time.Now()
		if err := s.Update(svcs, nil); err != nil {
			b.Fatal(err)
		}
		for {
			r, _, err := c.Exchange(q, addr)
			if err != nil {
				b.Fatal(err)
			}
			if len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == ip {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("%s: still %v 10 s after Update", q.Question[0].Name, r.Answer)
			}
		}
		lat[i] = time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 100)), "max-ms")
}

func benchServices() []berthdns.Service {
	svcs := make([]berthdns.Service, dnsServices)
	for i := range svcs {
		svcs[i] = berthdns.Service{
			Namespace: fmt.Sprintf("ns-%d", i/50), Name: fmt.Sprintf("svc-%d", i),
			ClusterIP: fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
			Ports:     []berthdns.Port{{Name: "http", Protocol: "TCP", Port: 80}},
		}
	}
	return svcs
}

// lookBinary finds a command test/setup.sh installs, or skips.
func lookBinary(b *testing.B, name string) string {
	b.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	b.Skipf("%s is not installed (test/setup.sh installs it)", name)
	return ""
}

// serveBerthDNS serves s on a loopback port until the benchmark ends.
func serveBerthDNS(b *testing.B, s *berthdns.Server) string {
	b.Helper()
	pc, l, err := berthdns.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ctx, pc, l); err != nil {
			b.Error(err)
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().String()
}

// startDNSUpstream runs the resolvers' upstream: every name has one A
// record, 192.0.2.1, with a TTL of 300 s (both caches keep it 30 s).
func startDNSUpstream(b *testing.B) string {
	b.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if q := r.Question[0]; q.Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)}}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	b.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// startDnsmasq runs dnsmasq on a loopback port with the hosts file and the
// upstream, its cache capped as berth's (30 s, 10,000 names) and its local
// names' TTL berth's 5 s, and waits until it answers.
func startDnsmasq(b *testing.B, bin, dir, hosts, upstream string) (addr string, pid int) {
	b.Helper()
	port := freeUDPPort(b)
	upHost, upPort, _ := net.SplitHostPort(upstream)
	logf, err := os.Create(filepath.Join(dir, "dnsmasq.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
		"--no-resolv", "--no-hosts", "--no-poll", "--addn-hosts="+hosts, "--local-ttl=5",
		"--server="+upHost+"#"+upPort, "--cache-size=10000", "--max-cache-ttl=30",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port="+strconv.Itoa(port),
		"--log-facility=-")
	cmd.Stdout, cmd.Stderr = logf, logf
	if os.Geteuid() == 0 {
		cmd.Args = append(cmd.Args, "--user=root") // its own user may not exist; it runs as root here anyway
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	q := new(dns.Msg)
	q.SetQuestion("svc-0.ns-0.svc.cluster.local.", dns.TypeA)
	c := &dns.Client{Timeout: 100 * time.Millisecond}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r, _, err := c.Exchange(q, addr); err == nil && len(r.Answer) == 1 {
			return addr, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			b.Fatalf("dnsmasq does not answer on %s: %s", addr, log)
		}
	}
}

// pidCPU is the user and system time process pid has used, from /proc
// (in clock ticks, 100 a second on Linux).
func pidCPU(pid int) (user, sys time.Duration) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// Fields 14 and 15, counted after the command name's closing parenthesis.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime) * 10 * time.Millisecond, time.Duration(stime) * 10 * time.Millisecond
}

func freeUDPPort(b *testing.B) int {
	b.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

type dnsperfResult struct {
	qps      float64
	p50, p99 time.Duration
	lost     int
}

// runDNSPerf sends the queries of file to addr passes times, with -v so
// each query's latency is printed (to a file, read after the run so the
// parsing takes no CPU from the servers), and fails on any rcode but
// NOERROR.
func runDNSPerf(b *testing.B, bin, addr, file string, passes int) dnsperfResult {
	b.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := os.CreateTemp(b.TempDir(), "dnsperf")
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "-s", host, "-p", port, "-d", file, "-n", strconv.Itoa(passes), "-v")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("dnsperf: %v: %s", err, stderr.String())
	}
	if _, err := out.Seek(0, 0); err != nil {
		b.Fatal(err)
	}
	var r dnsperfResult
	var lat []time.Duration
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == ">":
			if f[1] != "NOERROR" {
				b.Errorf("dnsperf: %s", line)
				continue
			}
			sec, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				b.Fatalf("dnsperf: %s", line)
			}
			lat = append(lat, time.Duration(sec*float64(time.Second)))
		case strings.HasPrefix(strings.TrimSpace(line), "Queries per second:"):
			r.qps, _ = strconv.ParseFloat(f[len(f)-1], 64)
		case strings.HasPrefix(strings.TrimSpace(line), "Queries lost:"):
			r.lost, _ = strconv.Atoi(f[2])
		}
	}
	if err := sc.Err(); err != nil || r.qps == 0 || len(lat) == 0 {
		b.Fatalf("dnsperf: %v, %d answers: %s", err, len(lat), stderr.String())
	}
	r.p50, r.p99 = percentile(lat, 50), percentile(lat, 99)
	return r
}
