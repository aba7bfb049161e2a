package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

// TestStoreTruncatedLog cuts a real raft.db short at several offsets, as
// a full disk or a bad copy leaves it: Open must refuse it with an error
// that names the file and what to do, and never panic or fault.
func TestStoreTruncatedLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openLeader(t, dir, true)
	for i := range 20 {
		populate(t, s, strings.Repeat("p", i+1)+"-") // distinct lengths: distinct Service IPs
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "raft", "raft.db")
	intact, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The high-water mark: bolt's pages end here, whatever the file's size.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var used, page int64
	db.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil })
	page = int64(db.Info().PageSize)
	db.Close()
	if used < 8*page {
		t.Fatalf("raft.db uses only %d bytes; the test needs more pages", used)
	}

	for _, off := range []int64{0, page / 2, page + 10, 2*page + 1, used / 4, used / 2, used - page, used - 1} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			if err := os.WriteFile(path, intact[:off], 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(testConfig(dir, true))
			if err == nil {
				s.Close()
				t.Fatalf("Open of raft.db truncated at %d of %d bytes succeeded", off, used)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "snapshot") || !strings.Contains(msg, "rejoin") {
				t.Fatalf("Open of raft.db truncated at %d: %v", off, err)
			}
		})
	}
}
