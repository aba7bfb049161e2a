package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/berth/berth/appliance"
)

// startTestMaster starts a real single-master cluster for the CLI to talk
// to, stopped when the test ends, and returns it with the path of its
// admin client config. cfg adds to the defaults (a gitops repo, a
// version); its name, addresses, data directory and logger are set here.
func startTestMaster(t *testing.T, cfg appliance.Config) (*appliance.Master, string) {
	t.Helper()
	// Raft wants a fixed address: take a free port and let it go.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.RaftListen = ln.Addr().String()
	ln.Close()
	cfg.Name, cfg.DataDir, cfg.Listen = "m0", t.TempDir(), "127.0.0.1:0"
	cfg.Bootstrap, cfg.Logger = true, slog.New(slog.DiscardHandler)
	m, err := appliance.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, filepath.Join(cfg.DataDir, "admin.conf")
}
