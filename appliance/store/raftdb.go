package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
)

// errDamaged marks a raft.db that Open refuses to hand to Raft.
var errDamaged = errors.New("the file is damaged (truncated or corrupt): move it aside, then rejoin this master " +
	"(remove it from the cluster, start it with --join on an empty data dir) or, for a lone master, " +
	"start a new one and restore a saved snapshot with berth master snapshot restore")

// checkRaftDB reads path the way Raft will, before Raft does. bbolt trusts
// its file: a truncated one makes it panic (an invalid freelist page) or
// fault on a page past the end of the file (SIGBUS), from inside bolt's
// open or later inside raft.NewRaft. So the file is opened read-only
// first, with faults turned into panics and both recovered here, then its
// size is checked against bolt's high-water mark, and every bucket is
// walked. A missing file is fine: bolt creates it.
func checkRaftDB(path string) (err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return fmt.Errorf("empty: %w", errDamaged)
	}
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				file.Close() // releases the flock, so the caller's retry is not "locked"
			}
			err = fmt.Errorf("%v: %w", r, errDamaged)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			file = f
			return f, err
		},
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%v: %w", err, errDamaged)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		if used := tx.Size(); fi.Size() < used {
			return fmt.Errorf("%d bytes of %d are left: %w", fi.Size(), used, errDamaged)
		}
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(_, _ []byte) error { return nil })
		})
	})
}
