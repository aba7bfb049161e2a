package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/test/harness"
)

// configRepo is a git repository whose commits change one ConfigMap: the
// masters need no agent to apply them.
type configRepo struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigRepo(t *testing.T) *configRepo {
	r := &configRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.commit()
	return r
}

func (r *configRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes the next version of the ConfigMap and returns the commit.
func (r *configRepo) commit() string {
	r.t.Helper()
	r.n++
	cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {version: %q}\n", fmt.Sprint(r.n))
	if err := os.WriteFile(filepath.Join(r.dir, "config.yaml"), []byte(cm), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", fmt.Sprintf("version %d", r.n))
	return r.git("rev-parse", "HEAD")
}

func loopback(t *testing.T, ip string) string { return harness.FreeAddr(t, ip) }

// threeMasters bootstraps m1 and joins m2 and m3 through it, m2 with the
// bootstrap master join token and m3, since that one is good for one join
// only, with one made by `berth token create`; netns, if set, is where m3
// runs (at ip3), the others on ip.
func threeMasters(t *testing.T, repo string, ip, netns, ip3 string) []*harness.Master {
	var ms []*harness.Master
	for i := range 3 {
		o := harness.MasterOptions{Listen: loopback(t, ip), RaftListen: loopback(t, ip), Extra: []string{"--repo", repo, "--poll", "1s"}}
		if i == 2 && netns != "" {
			o = harness.MasterOptions{Listen: ip3 + ":7443", RaftListen: ip3 + ":7444", NetNS: netns, Extra: o.Extra}
		}
		ms = append(ms, env.NewMaster(t, fmt.Sprintf("m%d", i+1), o))
	}
	ms[0].Start("--bootstrap")
	for i, m := range ms[1:] {
		token := ms[0].JoinToken("join-master")
		if i > 0 {
			token = ms[0].CreateToken("--role", "master-join", "--description", "for "+m.Name)
		}
		m.Start("--join", ms[0].URL, "--token", token, "--ca-hash", ms[0].CAHash())
	}
	admin := ms[0].Client(ms[0].AdminToken())
	harness.Eventually(t, "three voting members", time.Minute, func() error {
		members, err := admin.Members(context.Background())
		if err != nil {
			return err
		}
		if len(members) != 3 {
			return fmt.Errorf("%d members", len(members))
		}
		return nil
	})
	// admin.conf follows the membership, so that the CLI can fail over.
	harness.Eventually(t, "admin.conf listing every master", 30*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(ms[0].Data, "admin.conf"))
		if err != nil {
			return err
		}
		for _, m := range ms {
			if !strings.Contains(string(b), m.URL+",") && !strings.Contains(string(b), m.URL+"\n") {
				return fmt.Errorf("admin.conf lacks %s:\n%s", m.URL, b)
			}
		}
		return nil
	})
	return ms
}

// serverOnly is an admin.conf that names only server.
func serverOnly(conf, server string) string {
	lines := strings.Split(conf, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "server: ") {
			lines[i] = "server: " + server
		}
	}
	return strings.Join(lines, "\n")
}

// commits lists a master's revisions, oldest first, from its local state.
func commits(c *api.Client) ([]string, error) {
	revs, err := c.Revisions(context.Background())
	if err != nil {
		return nil, err
	}
	var out []string
	for i := len(revs) - 1; i >= 0; i-- {
		out = append(out, revs[i].Commit)
	}
	return out, nil
}

func leaderOf(t *testing.T, c *api.Client, ms []*harness.Master) *harness.Master {
	t.Helper()
	var leader *harness.Master
	harness.Eventually(t, "a leader", 30*time.Second, func() error {
		members, err := c.Members(context.Background())
		if err != nil {
			return err
		}
		for _, mem := range members {
			for _, m := range ms {
				if mem.Leader && mem.ID == m.Name {
					leader = m
					return nil
				}
			}
		}
		return errors.New("no leader among the members")
	})
	return leader
}

// TestHAKillLeader: three masters follow a repository that receives a
// commit every 300 ms; the leader is killed with SIGKILL. A new leader is
// elected, syncing resumes, every revision committed before the kill is
// on both survivors in the same order, and the killed master, started
// again on its data dir, catches up.
func TestHAKillLeader(t *testing.T) {
	repo := newConfigRepo(t)
	ms := threeMasters(t, repo.dir, "127.0.0.1", "", "")
	token := ms[0].AdminToken()
	all := ms[0].Client(token, ms[1], ms[2])

	var (
		mu   sync.Mutex
		made []string
	)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			c := repo.commit()
			mu.Lock()
			made = append(made, c)
			mu.Unlock()
			for _, m := range ms {
				m.Webhook(ctx)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	defer func() { stop(); <-done }()

	time.Sleep(3 * time.Second)
	leader := leaderOf(t, all, ms)
	before, err := commits(leader.Client(token))
	if err != nil || len(before) < 3 {
		t.Fatalf("revisions on the leader before the kill: %v %v", before, err)
	}
	leader.Kill()
	killed := time.Now()
	var survivors []*harness.Master
	for _, m := range ms {
		if m != leader {
			survivors = append(survivors, m)
		}
	}
	sc := survivors[0].Client(token, survivors[1])
	newLeader := leaderOf(t, sc, survivors)
	// The next revision committed after the kill: the new leader syncs.
	harness.Eventually(t, "a revision committed after the kill", 30*time.Second, func() error {
		now, err := commits(newLeader.Client(token))
		if err != nil {
			return err
		}
		if len(now) <= len(before) {
			return fmt.Errorf("%d revisions, %d before the kill", len(now), len(before))
		}
		return nil
	})
	t.Logf("kill -9 of leader %s: %s led, and committed the next revision, %s later", leader.Name, newLeader.Name, time.Since(killed).Round(10*time.Millisecond))
	// The bootstrap master's admin.conf still works: the CLI fails over
	// when the master it names first is the one killed.
	if out, err := exec.Command(env.Bin, "get", "revisions", "--config", filepath.Join(ms[0].Data, "admin.conf")).CombinedOutput(); err != nil {
		t.Fatalf("berth get revisions with admin.conf after the kill of %s: %v\n%s", leader.Name, err, out)
	}

	time.Sleep(2 * time.Second)
	stop()
	<-done
	mu.Lock()
	last := made[len(made)-1]
	mu.Unlock()
	for _, m := range survivors {
		m.Webhook(context.Background())
	}
	check := func(m *harness.Master) error {
		got, err := commits(m.Client(token))
		if err != nil {
			return err
		}
		if len(got) < len(before) || !slices.Equal(got[:len(before)], before) {
			return fmt.Errorf("%s's revisions do not start with the %d committed before the kill", m.Name, len(before))
		}
		if got[len(got)-1] != last {
			return fmt.Errorf("%s has not applied the last commit %s yet (has %d revisions)", m.Name, last[:8], len(got))
		}
		return nil
	}
	for _, m := range survivors {
		harness.Eventually(t, m.Name+" has every revision in order", time.Minute, func() error { return check(m) })
	}
	a, _ := commits(survivors[0].Client(token))
	b, _ := commits(survivors[1].Client(token))
	if !slices.Equal(a, b) {
		t.Fatalf("the survivors diverge:\n%v\n%v", a, b)
	}

	leader.Start() // its data dir holds its state: no join flags
	harness.Eventually(t, leader.Name+" catches up", time.Minute, func() error {
		got, err := commits(leader.Client(token))
		if err != nil {
			return err
		}
		if !slices.Equal(got, a) {
			return fmt.Errorf("%d revisions, the others have %d", len(got), len(a))
		}
		return nil
	})
}

// TestHAPartition: a follower in a network namespace of its own is cut
// off from the other masters with nftables while commits go on. A
// ?consistent=true read on it fails rather than answering stale; healed,
// it catches up without divergence.
func TestHAPartition(t *testing.T) {
	ns := fmt.Sprintf("bha%d", os.Getpid()%100000)
	hostIP, nsIP := "10.251.0.1", "10.251.0.2"
	vethHost := netnsWithVeth(t, ns, nsIP)
	run(t, "ip", "addr", "add", hostIP+"/24", "dev", vethHost)
	run(t, "ip", "link", "set", vethHost, "up")
	waitReachable(t, ns, hostIP)

	repo := newConfigRepo(t)
	ms := threeMasters(t, repo.dir, hostIP, ns, nsIP)
	token := ms[0].AdminToken()
	isolated := ms[2]
	if leaderOf(t, ms[0].Client(token), ms) == isolated {
		// The bootstrap master leads from the start and nothing here makes
		// it step down; if that changes, this test must pick the follower.
		t.Fatal("the master to isolate leads; this test isolates a follower")
	}
	before, err := commits(isolated.Client(token))
	if err != nil {
		t.Fatal(err)
	}

	// Cut the isolated master off from the others, in its own namespace:
	// it reaches neither their API nor their Raft port, and they cannot
	// reach its Raft port. The test still reaches its API.
	var theirs []string
	for _, m := range ms[:2] {
		for _, a := range []string{strings.TrimPrefix(m.URL, "https://"), m.Raft} {
			_, p, _ := net.SplitHostPort(a)
			theirs = append(theirs, p)
		}
	}
	_, ownRaft, _ := net.SplitHostPort(isolated.Raft)
	rules := fmt.Sprintf(`table inet partition {
  chain out { type filter hook output priority 0; ip daddr %s tcp dport { %s } drop; }
  chain in { type filter hook input priority 0; ip saddr %s tcp dport %s drop; }
}`, hostIP, strings.Join(theirs, ", "), hostIP, ownRaft)
	nft := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(rules)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s\n%s", err, out, rules)
	}

	var head string
	for range 3 {
		head = repo.commit()
		ms[0].Webhook(context.Background())
		ms[1].Webhook(context.Background())
		time.Sleep(500 * time.Millisecond)
	}
	// Only the branch head is recorded (a commit superseded before the
	// next sync never ran), so the majority's newest revision is what
	// tells that it kept syncing.
	majority := ms[0].Client(token, ms[1])
	harness.Eventually(t, "the majority applies the last commit", time.Minute, func() error {
		got, err := commits(majority)
		if err != nil || len(got) <= len(before) || got[len(got)-1] != head {
			return fmt.Errorf("%d revisions, not ending with %s: %v", len(got), head[:8], err)
		}
		return nil
	})
	ic := isolated.Client(token)
	stale, err := commits(ic)
	if err != nil {
		t.Fatalf("a plain read on the isolated master is served locally: %v", err)
	}
	if len(stale) != len(before) {
		t.Fatalf("the isolated master saw commits through the partition: %d revisions, had %d", len(stale), len(before))
	}
	h, _ := isolated.HTTP()
	req, _ := http.NewRequest(http.MethodGet, isolated.URL+"/v1/revisions?consistent=true", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := h.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("consistent read on the isolated master: %s, want 503 rather than stale data", resp.Status)
	}

	run(t, "ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "partition")
	want, _ := commits(majority)
	harness.Eventually(t, "the healed master catches up", time.Minute, func() error {
		got, err := commits(ic)
		if err != nil {
			return err
		}
		if !slices.Equal(got[:min(len(got), len(want))], want) || len(got) < len(want) {
			return fmt.Errorf("%d revisions, the majority has %d", len(got), len(want))
		}
		return nil
	})
}

// waitReachable waits until a TCP connection from network namespace ns to
// ip succeeds, so that a master started there can reach the others; when
// it does not, it shows the host's routes and firewall, where a route left
// by another run would be.
func waitReachable(t *testing.T, ns, ip string) {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	probe := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", ip, port)
	var out []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out, err = exec.Command("ip", "netns", "exec", ns, "timeout", "2", "bash", "-c", probe).CombinedOutput(); err == nil {
			return
		}
	}
	routes, _ := exec.Command("ip", "route").CombinedOutput()
	rules, _ := exec.Command("nft", "list", "ruleset").CombinedOutput()
	t.Fatalf("%s cannot reach %s: %v %s\nroutes here:\n%s\nnftables here:\n%s", ns, ip, err, out, routes, rules)
}

// TestHAJoinLeaveRestart: a join with a wrong token or CA fingerprint is
// refused; a snapshot saved with the CLI restores the whole cluster (and
// garbage is refused); all three masters restarted from their data dirs
// return with the same state; a master leaves cleanly; a master whose Raft
// log is corrupt stops with a clear error rather than starting empty.
func TestHAJoinLeaveRestart(t *testing.T) {
	repo := newConfigRepo(t)
	ms := threeMasters(t, repo.dir, "127.0.0.1", "", "")
	token := ms[0].AdminToken()
	for range 2 {
		repo.commit()
		ms[0].Webhook(context.Background())
	}

	good := []string{"--join", ms[0].URL, "--token", ms[0].CreateToken("--role", "master-join"), "--ca-hash", ms[0].CAHash()}
	// Expired long before a master process can start and use it.
	expired := ms[0].CreateToken("--role", "master-join", "--ttl", "1ms")
	for _, tc := range []struct {
		name string
		flag string
		bad  string
		want string
	}{
		{"wrong token", "--token", "wrongg.0123456789abcdef", "invalid bearer token"},
		{"agent token", "--token", ms[0].JoinToken("join-agent"), "not allowed for agent-join"},
		// m2 joined with it: a leaked bootstrap token is worth nothing now.
		{"used token", "--token", ms[0].JoinToken("join-master"), "token has been used up"},
		{"expired token", "--token", expired, "token has expired"},
		{"wrong CA", "--ca-hash", "sha256:" + strings.Repeat("ab", 32), "fingerprint"},
	} {
		intruder := env.NewMaster(t, "intruder", harness.MasterOptions{Listen: loopback(t, "127.0.0.1"), RaftListen: loopback(t, "127.0.0.1")})
		args := slices.Clone(good)
		args[slices.Index(args, tc.flag)+1] = tc.bad
		if err := intruder.StartNoWait(args...); err != nil {
			t.Fatal(err)
		}
		if err := intruder.Wait(time.Minute); err == nil {
			t.Errorf("%s: the join succeeded", tc.name)
		}
		if log := intruder.LogTail(2000); !strings.Contains(log, tc.want) {
			t.Errorf("%s: the refusal does not say %q:\n%s", tc.name, tc.want, log)
		}
	}
	admin := ms[0].Client(token, ms[1])
	if members, _ := admin.Members(context.Background()); len(members) != 3 {
		t.Fatalf("refused joins changed the membership: %+v", members)
	}

	head := repo.git("rev-parse", "HEAD")
	harness.Eventually(t, "the last commit applied", 30*time.Second, func() error {
		ms[0].Webhook(context.Background())
		got, err := commits(admin)
		if err == nil && got[len(got)-1] != head {
			err = fmt.Errorf("the last of %d revisions is not %s", len(got), head[:8])
		}
		return err
	})
	saved, _ := commits(admin)

	// Every master stopped and started again from its data dir.
	for _, m := range ms {
		m.Stop()
	}

	for _, m := range ms {
		if err := m.StartNoWait(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ms {
		m.WaitReady(time.Minute)
		got, err := commits(m.Client(token))
		if err != nil || !slices.Equal(got, saved) {
			t.Fatalf("%s after restarting every master (ready, so caught up): %v %v, want %v", m.Name, got, err, saved)
		}
	}

	// A snapshot saved with the CLI, restored through a follower after
	// more changes: the whole cluster goes back to the saved state.
	conf := filepath.Join(ms[0].Data, "admin.conf")
	snap := filepath.Join(t.TempDir(), "cluster.snap")
	if out, err := exec.Command(env.Bin, "master", "snapshot", "save", snap, "--config", conf).CombinedOutput(); err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	// After the snapshot: a token, and a commit.
	afterSnap, err := admin.CreateToken(context.Background(), api.TokenRequest{Role: "read-only", Description: "after the snapshot"})
	if err != nil {
		t.Fatal(err)
	}
	later := repo.commit()
	harness.Eventually(t, "a commit after the snapshot", 30*time.Second, func() error {
		ms[0].Webhook(context.Background())
		got, err := commits(admin)
		if err == nil && got[len(got)-1] != later {
			err = errors.New("not applied yet")
		}
		return err
	})
	viaFollower := filepath.Join(t.TempDir(), "follower.conf")
	b, _ := os.ReadFile(conf)
	os.WriteFile(viaFollower, []byte(serverOnly(string(b), ms[1].URL)), 0o600)
	if out, err := exec.Command(env.Bin, "master", "snapshot", "restore", snap, "--config", viaFollower).CombinedOutput(); err != nil {
		t.Fatalf("snapshot restore through a follower: %v\n%s", err, out)
	}
	// Every master holds the snapshot's state: the token made after it is
	// gone; the repository's head, missing from the snapshot, is synced
	// again right after.
	for _, m := range ms {
		harness.Eventually(t, m.Name+" holds the restored state", 30*time.Second, func() error {
			_, err := m.Client(afterSnap.Secret).Status(context.Background())
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != http.StatusUnauthorized {
				return fmt.Errorf("the token made after the snapshot still works: %v", err)
			}
			got, err := commits(m.Client(token))
			if err == nil && (!slices.Equal(got[:min(len(got), len(saved))], saved) || got[len(got)-1] != later) {
				err = fmt.Errorf("revisions %v, want the snapshot's %v and then the head %s", got, saved, later[:8])
			}
			return err
		})
	}
	garbage := filepath.Join(t.TempDir(), "garbage.snap")
	os.WriteFile(garbage, []byte("not a snapshot\n"), 0o600)
	if out, err := exec.Command(env.Bin, "master", "snapshot", "restore", garbage, "--config", conf).CombinedOutput(); err == nil || !strings.Contains(string(out), "refusing the snapshot") {
		t.Errorf("restoring garbage: %v\n%s", err, out)
	}

	// The leader leaves: `berth master leave` removes it with its own
	// certificate; it hands leadership over first.
	leaver := leaderOf(t, ms[0].Client(token, ms[1], ms[2]), ms)
	var rest []*harness.Master
	for _, m := range ms {
		if m != leaver {
			rest = append(rest, m)
		}
	}
	out, err := exec.Command(env.Bin, "master", "leave", "--data", leaver.Data).CombinedOutput()
	if err != nil {
		t.Fatalf("berth master leave (the leader): %v\n%s", err, out)
	}
	if err := leaver.Wait(time.Minute); err != nil && !strings.Contains(err.Error(), "signal") {
		t.Errorf("the leaving master did not stop cleanly: %v", err)
	}
	remaining := rest[0].Client(token, rest[1])
	harness.Eventually(t, "two members after the leave", 30*time.Second, func() error {
		members, err := remaining.Members(context.Background())
		if err == nil && len(members) != 2 {
			err = fmt.Errorf("%d members", len(members))
		}
		return err
	})
	if _, err := remaining.CreateToken(context.Background(), api.TokenRequest{Role: "read-only"}); err != nil {
		t.Errorf("the two remaining masters do not commit: %v", err)
	}

	corrupt := rest[1]
	corrupt.Stop()
	db := filepath.Join(corrupt.Data, "raft", "raft.db")
	f, err := os.OpenFile(db, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 2*os.Getpagesize()), 0) // both of bolt's meta pages
	f.Close()
	if err := corrupt.StartNoWait(); err != nil {
		t.Fatal(err)
	}
	if err := corrupt.Wait(time.Minute); err == nil {
		t.Fatal("a master with a corrupt Raft log started")
	}
	if log := corrupt.LogTail(2000); !strings.Contains(log, "opening the raft log "+db) {
		t.Errorf("the corrupt log's error does not name it:\n%s", log)
	}
}
