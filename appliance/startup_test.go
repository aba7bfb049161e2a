package appliance

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
)

// A start that fails after the store is open closes it: the appliance
// retries Start in the same process, which found raft.db locked forever.
func TestFailedStartClosesWhatItOpened(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Name: "m0", DataDir: t.TempDir(), Listen: "127.0.0.1:0", RaftListen: freeAddr(t), Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler)}
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.Token = "not a token" // refused once the store is open and leads
	if _, err := Start(ctx, bad); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Fatalf("start with a malformed admin token: %v", err)
	}
	m, err = Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start after a failed start in the same process: %v", err)
	}
	m.Close()
}

// A master that got its certificate but stopped before it was added as a
// member adds itself when it starts again, instead of waiting forever for
// a leader no cluster gives it.
func TestRestartResumesJoin(t *testing.T) {
	ctx := context.Background()
	var cfg1 Config
	m0, m1 := leaderAndFollower(t, &cfg1)
	cfg1.Join, cfg1.Token, cfg1.CAHash = "", "", "" // its data dir has its identity now
	if _, err := os.Stat(joinPendingPath(cfg1.DataDir)); !os.IsNotExist(err) {
		t.Fatalf("a finished join leaves its pending mark: %v", err)
	}
	m1.Close()
	// As if m1 had stopped between receiving its identity and being added.
	if err := (cluster{m0}).RemoveMember(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if err := writeJoinPending(cfg1.DataDir, []string{m0.URL()}); err != nil {
		t.Fatal(err)
	}

	m1, err := Start(ctx, cfg1)
	if err != nil {
		t.Fatalf("restart with an unfinished join: %v", err)
	}
	defer m1.Close()
	admin := api.NewClient(m0.URL(), m0.AdminToken(), api.WithHTTPClient(m0.HTTPClient()))
	eventually(t, "m1 a voting member again", func() bool {
		ms, err := admin.Members(ctx)
		return err == nil && len(ms) == 2 && ms[1].ID == "m1" && ms[1].Voter
	})
	if _, err := os.Stat(joinPendingPath(cfg1.DataDir)); !os.IsNotExist(err) {
		t.Fatalf("the resumed join leaves its pending mark: %v", err)
	}
}

// A cluster bootstrapped with its own pod network hands its nodes pod
// CIDRs from it, and tells them the range.
func TestBootstrapPodNetwork(t *testing.T) {
	ctx := context.Background()
	pn := state.PodNetwork{CIDR: "10.60.0.0/22", NodeMaskBits: 26}
	m, err := Start(ctx, Config{Name: "m0", DataDir: t.TempDir(), Listen: "127.0.0.1:0", RaftListen: freeAddr(t), Bootstrap: true,
		PodNetwork: pn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	admin := api.NewClient(m.URL(), m.AdminToken(), api.WithHTTPClient(m.HTTPClient()))
	n, err := admin.RegisterNode(ctx, state.Node{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if n.PodCIDR != "10.60.0.0/26" || n.ClusterCIDR != pn.CIDR || m.Store.State().Network() != pn {
		t.Fatalf("node %s in %s, cluster network %+v; want 10.60.0.0/26 in %s", n.PodCIDR, n.ClusterCIDR, m.Store.State().Network(), pn.CIDR)
	}
}
