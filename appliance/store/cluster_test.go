package store

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

// testCA is a throwaway cluster CA.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// tlsConfig returns the mutual-TLS config of a master named name, with a
// certificate for 127.0.0.1 usable as server and client.
func (ca *testCA) tlsConfig(t testing.TB, name string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      ca.pool,
		ClientCAs:    ca.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// member is one master of a test cluster, with what it takes to reopen it.
type member struct {
	*Store
	cfg Config
}

type clusterOpts struct {
	size int
	// snapshot tuning, zero for Raft's defaults
	threshold, trailing uint64
	interval            time.Duration
}

// newCluster starts opts.size masters over mutual TLS on loopback: the
// first bootstraps, the others start empty and join through AddVoter, as
// `berth master --join` does.
func newCluster(t *testing.T, ca *testCA, opts clusterOpts) []*member {
	t.Helper()
	var ms []*member
	for i := range opts.size {
		name := fmt.Sprintf("m%d", i+1)
		cfg := Config{
			DataDir: t.TempDir(), NodeID: name, BindAddr: "127.0.0.1:0", Bootstrap: i == 0,
			TLS:               ca.tlsConfig(t, name),
			SnapshotThreshold: opts.threshold, TrailingLogs: opts.trailing, SnapshotInterval: opts.interval,
			Logger: slog.New(slog.DiscardHandler),
		}
		m := &member{cfg: cfg}
		m.open(t)
		// Restarts reuse the port, as a master's configured address does.
		m.cfg.BindAddr = m.Addr()
		ms = append(ms, m)
	}
	waitLeader(t, ms[:1])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range ms[1:] {
		if err := ms[0].AddVoter(ctx, m.ID(), m.cfg.BindAddr); err != nil {
			t.Fatalf("AddVoter %s: %v", m.ID(), err)
		}
	}
	// A member added last may not have heard from the leader yet.
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range ms {
		for id, _ := m.Leader(); id != ms[0].ID(); id, _ = m.Leader() {
			if time.Now().After(deadline) {
				t.Fatalf("%s knows no leader after 10s", m.ID())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return ms
}

func (m *member) open(t *testing.T) {
	t.Helper()
	s, err := Open(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Store = s
	t.Cleanup(func() { s.Close() })
}

// waitLeader returns the member that leads (with its barrier applied),
// failing after 10s.
func waitLeader(t *testing.T, ms []*member) *member {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range ms {
			if m.IsLeader() {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader within 10s")
	return nil
}

// waitIndex waits until every member has applied index.
func waitIndex(t *testing.T, index uint64, ms ...*member) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, m := range ms {
		if got, err := m.Wait(ctx, index-1); err != nil {
			t.Fatalf("%s reached index %d, want %d: %v", m.ID(), got, index, err)
		}
	}
}

// commitRevisions proposes n revisions named prefix0.. on leader, one
// batch each, and returns the last index.
func commitRevisions(t *testing.T, leader *member, prefix string, n int) uint64 {
	t.Helper()
	var index uint64
	for i := range n {
		index = propose(t, leader.Store, state.NewCommand(state.CmdAddRevision, state.Revision{Commit: fmt.Sprintf("%s%d", prefix, i), Status: state.RevisionRejected, Time: statetest.T0}))
	}
	return index
}

func commits(s *state.State) []string {
	var out []string
	for _, r := range s.Revisions {
		out = append(out, r.Commit)
	}
	return out
}

func others(ms []*member, not *member) []*member {
	return slices.DeleteFunc(slices.Clone(ms), func(m *member) bool { return m == not })
}

func TestClusterFailover(t *testing.T) {
	t.Parallel()
	ms := newCluster(t, newTestCA(t), clusterOpts{size: 3})
	leader := waitLeader(t, ms)

	members, err := leader.Members()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range members {
		if !m.Voter || m.Leader != (m.ID == leader.ID()) {
			t.Fatalf("members: %+v", members)
		}
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"m1", "m2", "m3"}) {
		t.Fatalf("members: %+v", members)
	}
	for _, m := range ms {
		if id, addr := m.Leader(); id != leader.ID() || addr != leader.cfg.BindAddr {
			t.Fatalf("%s sees leader %s at %s", m.ID(), id, addr)
		}
	}
	// Joining again with the same address changes nothing.
	if err := leader.AddVoter(context.Background(), "m2", ms[1].cfg.BindAddr); err != nil {
		t.Fatalf("AddVoter again: %v", err)
	}
	if again, _ := leader.Members(); !reflect.DeepEqual(again, members) {
		t.Fatalf("members after AddVoter again: %+v", again)
	}
	if err := leader.AddVoter(context.Background(), "m9", ms[1].cfg.BindAddr); err == nil || !strings.Contains(err.Error(), "already the address of member m2") {
		t.Fatalf("AddVoter of a second ID on one address = %v", err)
	}
	follower := others(ms, leader)[0]
	if _, err := follower.Propose(context.Background(), []state.Command{state.NewCommand(state.CmdRegisterNode, state.Node{Name: "n"})}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Propose on a follower = %v", err)
	}
	if err := follower.AddVoter(context.Background(), "m9", "127.0.0.1:1"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("AddVoter on a follower = %v", err)
	}

	index := commitRevisions(t, leader, "before", 50)
	waitIndex(t, index, ms...)
	want := commits(leader.State())
	for _, m := range ms {
		if got := commits(m.State()); !slices.Equal(got, want) {
			t.Fatalf("%s has %v, want %v", m.ID(), got, want)
		}
	}

	// The leader dies (an in-process Close: it stops answering, and does
	// not hand over leadership).
	stopped := time.Now()
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	survivors := others(ms, leader)
	next := waitLeader(t, survivors)
	index = commitRevisions(t, next, "after", 1)
	t.Logf("from Close of the leader to the next commit: %v", time.Since(stopped))
	if d := time.Since(stopped); d > 5*time.Second {
		t.Fatalf("the next commit took %v after the leader stopped", d)
	}
	index = max(index, commitRevisions(t, next, "after-more", 10))
	waitIndex(t, index, survivors...)
	for _, m := range survivors {
		got := commits(m.State())
		if !slices.Equal(got[:len(want)], want) || len(got) != len(want)+11 {
			t.Fatalf("%s after failover has %v, want %v then 11 more", m.ID(), got, want)
		}
	}

	// The old leader comes back on its data dir and catches up.
	leader.open(t)
	waitIndex(t, index, leader)
	if got, want := commits(leader.State()), commits(next.State()); !slices.Equal(got, want) {
		t.Fatalf("restarted %s has %v, want %v", leader.ID(), got, want)
	}
}

func TestClusterSnapshotInstall(t *testing.T) {
	t.Parallel()
	ms := newCluster(t, newTestCA(t), clusterOpts{size: 3, threshold: 16, trailing: 8, interval: 50 * time.Millisecond})
	leader := waitLeader(t, ms)
	index := commitRevisions(t, leader, "a", 5)
	waitIndex(t, index, ms...)

	lagging := others(ms, leader)[0]
	behind, err := lagging.bolt.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := lagging.Close(); err != nil {
		t.Fatal(err)
	}
	index = commitRevisions(t, leader, "b", 200)
	// Wait until the leader has compacted away the entries the lagging
	// member lacks, so only a snapshot can bring it up to date.
	deadline := time.Now().Add(15 * time.Second)
	for {
		first, err := leader.bolt.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		if first > behind+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's log still starts at %d, the lagging member has up to %d", first, behind)
		}
		time.Sleep(20 * time.Millisecond)
	}

	lagging.open(t)
	waitIndex(t, index, lagging)
	// 205 revisions, of which the state keeps the newest hundred.
	if got, want := commits(lagging.State()), commits(leader.State()); !slices.Equal(got, want) || len(got) != state.DefaultRevisionHistory || got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("caught-up member has %d revisions, want %d", len(got), len(want))
	}
}

func TestClusterRemoveServer(t *testing.T) {
	t.Parallel()
	ms := newCluster(t, newTestCA(t), clusterOpts{size: 3})
	leader := waitLeader(t, ms)
	gone := others(ms, leader)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := others(ms, leader)[1].RemoveServer(ctx, gone.ID()); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("RemoveServer on a follower = %v", err)
	}
	if err := leader.RemoveServer(ctx, gone.ID()); err != nil {
		t.Fatal(err)
	}
	members, err := leader.Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || slices.ContainsFunc(members, func(m Member) bool { return m.ID == gone.ID() }) {
		t.Fatalf("members after removing %s: %+v", gone.ID(), members)
	}
	// The two left make a quorum on their own.
	gone.Close()
	index := commitRevisions(t, leader, "x", 3)
	waitIndex(t, index, others(ms, gone)...)
	if err := leader.RemoveServer(ctx, gone.ID()); err != nil {
		t.Fatalf("removing a server again = %v", err)
	}
}

func TestClusterVerifyLeader(t *testing.T) {
	t.Parallel()
	ms := newCluster(t, newTestCA(t), clusterOpts{size: 3})
	leader := waitLeader(t, ms)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.VerifyLeader(ctx); err != nil {
		t.Fatalf("VerifyLeader on the leader = %v", err)
	}
	if err := others(ms, leader)[0].VerifyLeader(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("VerifyLeader on a follower = %v", err)
	}
	for _, m := range others(ms, leader) {
		m.Close()
	}
	// A heartbeat answered just before the peers stopped still counts as
	// a vote when its answer arrives after VerifyLeader starts; Raft
	// promises nothing within that round trip, so let it pass.
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := leader.VerifyLeader(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("VerifyLeader on a leader without its peers = %v", err)
	}
	t.Logf("VerifyLeader failed after %v", time.Since(start))
}

func TestClusterForeignCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	ms := newCluster(t, ca, clusterOpts{size: 1})
	leader := ms[0]

	// A master with a certificate of another CA cannot be added...
	foreign := &member{cfg: Config{
		DataDir: t.TempDir(), NodeID: "intruder", BindAddr: "127.0.0.1:0",
		TLS: newTestCA(t).tlsConfig(t, "intruder"), Logger: slog.New(slog.DiscardHandler),
	}}
	foreign.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := leader.AddVoter(ctx, "intruder", foreign.Addr())
	if err == nil || !strings.Contains(err.Error(), "certificate this cluster does not trust") {
		t.Fatalf("AddVoter of a master with a foreign certificate = %v", err)
	}
	if members, _ := leader.Members(); len(members) != 1 {
		t.Fatalf("members: %+v", members)
	}

	// ...nor talk to the cluster's Raft port: the TLS layer refuses its
	// client certificate before Raft reads a byte.
	conn, err := tls.Dial("tcp", leader.cfg.BindAddr, foreign.cfg.TLS.Clone())
	if err == nil {
		// TLS 1.3 clients finish the handshake before the server has
		// checked their certificate; the refusal arrives on the next read.
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client with a foreign certificate got %v", err)
	}
	// Nor can a client without any certificate.
	noCert := ca.tlsConfig(t, "x")
	noCert.Certificates = nil
	conn, err = tls.Dial("tcp", leader.cfg.BindAddr, noCert)
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without a certificate got %v", err)
	}
}

func TestClusterSnapshotSaveRestore(t *testing.T) {
	t.Parallel()
	ms := newCluster(t, newTestCA(t), clusterOpts{size: 3})
	leader := waitLeader(t, ms)
	populate(t, leader.Store, "")
	index := commitRevisions(t, leader, "saved", 5)
	waitIndex(t, index, ms...)

	// A follower can save.
	var backup bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := others(ms, leader)[0].SaveSnapshot(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	saved := leader.State()

	populate(t, leader.Store, "later")
	index = commitRevisions(t, leader, "later", 5)
	waitIndex(t, index, ms...)
	changed := leader.State()

	refused := func(name string, data []byte, want string) {
		t.Helper()
		err := leader.RestoreSnapshot(ctx, bytes.NewReader(data))
		if err == nil || !strings.Contains(err.Error(), "refusing the snapshot") || !strings.Contains(err.Error(), want) {
			t.Fatalf("RestoreSnapshot of a %s = %v, want an error with %q", name, err, want)
		}
		if got := leader.State(); !statetest.Same(got, changed) {
			t.Fatalf("a refused %s changed the state", name)
		}
	}
	b := backup.Bytes()
	flipped := bytes.Clone(b)
	flipped[len(b)/2] ^= 0x01
	refused("flipped byte", flipped, "SHA-256 mismatch")
	refused("truncated file", b[:len(b)*2/3], "truncated")
	refused("file without its checksum", b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1], "no checksum")
	refused("garbage", bytes.Repeat([]byte("garbage "), 1000), "no line break")
	refused("file of something else", []byte("{\"format\":\"tar\"}\n"), "not a berth snapshot file")
	refused("empty file", nil, "header")
	refused("file with trailing data", append(bytes.Clone(b), "x"...), "data after the checksum")

	if err := others(ms, leader)[0].RestoreSnapshot(ctx, bytes.NewReader(b)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("RestoreSnapshot on a follower = %v", err)
	}

	waiter := make(chan error, 1)
	go func() { _, err := leader.Wait(ctx, changed.Index); waiter <- err }()
	if err := leader.RestoreSnapshot(ctx, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if err := <-waiter; err != nil {
		t.Fatalf("a waiter did not wake on the restore: %v", err)
	}
	// Every member adopts the saved state; only Index moves on.
	deadline := time.Now().Add(15 * time.Second)
	for _, m := range ms {
		for {
			got := m.State()
			if got.Index > changed.Index {
				got.Index = saved.Index
				if statetest.Same(got, saved) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not adopt the restored state: %v", m.ID(), commits(got))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// And the cluster goes on from there.
	index = commitRevisions(t, leader, "next", 1)
	waitIndex(t, index, ms...)
	for _, m := range ms {
		if got := commits(m.State()); !slices.Equal(got, append(commits(saved), "next0")) {
			t.Fatalf("%s after restore and a commit: %v", m.ID(), got)
		}
	}
}
