package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berth/berth/appliance/state"
	"github.com/hashicorp/raft"
)

// A backup file is a header line, the state exactly as Raft's snapshot
// store holds it (see WriteSnapshot), and a trailer line with the SHA-256
// of everything before it. The checksum is what tells a flipped byte inside
// a string from a valid state; the JSON parser alone would take it.
const (
	backupFormat  = "berth-snapshot"
	backupVersion = 1
	// maxBackupLine bounds the header and trailer lines, so that garbage
	// without a newline is refused without reading it all.
	maxBackupLine = 4096
)

type backupHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Index and Term are the Raft position the state was taken at, for
	// the operator; the restored cluster continues after its own.
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	Size  int64  `json:"size"`
}

type backupTrailer struct {
	SHA256 string `json:"sha256"`
}

// SaveSnapshot snapshots the state now and writes it to w as a backup file
// for RestoreSnapshot. Any member can save; a follower's backup holds what
// it has applied.
func (s *Store) SaveSnapshot(ctx context.Context, w io.Writer) error {
	meta, rc, err := s.snapshotNow(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	sum := sha256.New()
	out := io.MultiWriter(w, sum)
	hdr, err := json.Marshal(backupHeader{Format: backupFormat, Version: backupVersion, Index: meta.Index, Term: meta.Term, Size: meta.Size})
	if err != nil {
		return err
	}
	if _, err := out.Write(append(hdr, '\n')); err != nil {
		return fmt.Errorf("store: writing the snapshot: %w", err)
	}
	if _, err := io.CopyN(out, rc, meta.Size); err != nil {
		return fmt.Errorf("store: writing the snapshot: %w", err)
	}
	trailer, err := json.Marshal(backupTrailer{SHA256: hex.EncodeToString(sum.Sum(nil))})
	if err != nil {
		return err
	}
	if _, err := w.Write(append(trailer, '\n')); err != nil {
		return fmt.Errorf("store: writing the snapshot: %w", err)
	}
	return nil
}

// snapshotNow has Raft take a snapshot and opens it. When nothing was
// applied since the newest snapshot, that one is current and is opened.
func (s *Store) snapshotNow(ctx context.Context) (*raft.SnapshotMeta, io.ReadCloser, error) {
	future := s.raft.Snapshot()
	err := s.await(ctx, future)
	if err == nil {
		return future.Open()
	}
	if !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil, nil, err
	}
	list, err := s.snaps.List()
	if err != nil {
		return nil, nil, fmt.Errorf("store: listing snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil, nil, errors.New("store: nothing to snapshot yet")
	}
	return s.snaps.Open(list[0].ID)
}

// RestoreSnapshot replaces the cluster's state with a backup that
// SaveSnapshot wrote. It runs on the leader, which installs the backup as
// its newest snapshot and sends it to every follower; the membership stays
// as it is, so a backup of another cluster restores into this one.
//
// The whole stream is read and checked (checksum, format, every object)
// before Raft sees it: Raft panics on a snapshot its FSM refuses, and a
// refused backup must leave the state as it was.
func (s *Store) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	if s.raft.State() != raft.Leader {
		return s.raftError(raft.ErrNotLeader)
	}
	f, hdr, err := s.spoolBackup(r)
	if f != nil {
		defer os.Remove(f.Name())
		defer f.Close()
	}
	if err != nil {
		return fmt.Errorf("store: refusing the snapshot: %w", err)
	}
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: hdr.Index, Term: hdr.Term, Size: hdr.Size}
	// Raft's Restore cannot be cancelled once it has started copying, so
	// ctx bounds only the wait for the Raft goroutine to take it.
	if err := s.raft.Restore(meta, f, timeout); err != nil {
		return s.raftError(err)
	}
	s.log.Info("restored a snapshot", "from-index", hdr.Index, "bytes", hdr.Size)
	return nil
}

// spoolBackup copies a backup's state into a temporary file in the data
// dir, checks it, and returns the file positioned at the state's start.
func (s *Store) spoolBackup(r io.Reader) (*os.File, backupHeader, error) {
	var hdr backupHeader
	br := bufio.NewReaderSize(r, maxBackupLine)
	line, err := readBackupLine(br)
	if err != nil {
		return nil, hdr, fmt.Errorf("header: %w", err)
	}
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Format != backupFormat {
		return nil, hdr, errors.New("not a berth snapshot file")
	}
	if hdr.Version != backupVersion {
		return nil, hdr, fmt.Errorf("snapshot file version %d is unknown (this master reads %d)", hdr.Version, backupVersion)
	}
	if hdr.Size <= 0 {
		return nil, hdr, fmt.Errorf("header gives the state's size as %d", hdr.Size)
	}
	sum := sha256.New()
	sum.Write(line)
	sum.Write([]byte{'\n'})

	f, err := os.CreateTemp(s.dir, "restore-*.tmp")
	if err != nil {
		return nil, hdr, err
	}
	n, err := io.CopyN(io.MultiWriter(f, sum), br, hdr.Size)
	if errors.Is(err, io.EOF) {
		return f, hdr, fmt.Errorf("truncated: the state ends after %d of %d bytes", n, hdr.Size)
	}
	if err != nil {
		return f, hdr, err
	}
	line, err = readBackupLine(br)
	if err != nil {
		return f, hdr, fmt.Errorf("truncated or corrupt: no checksum after the state: %w", err)
	}
	var trailer backupTrailer
	if err := json.Unmarshal(line, &trailer); err != nil || trailer.SHA256 == "" {
		return f, hdr, errors.New("corrupt: no checksum after the state")
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != trailer.SHA256 {
		return f, hdr, fmt.Errorf("corrupt: SHA-256 mismatch (file says %s, content is %s)", trailer.SHA256, got)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return f, hdr, errors.New("corrupt: data after the checksum")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return f, hdr, err
	}
	// The same reader the FSM restores with, so that what passes here
	// cannot fail inside Raft.
	if _, err := state.ReadSnapshot(bufio.NewReader(f)); err != nil {
		return f, hdr, err
	}
	_, err = f.Seek(0, io.SeekStart)
	return f, hdr, err
}

// readBackupLine returns one line without its newline, with the newline
// required.
func readBackupLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("no line break in the first %d bytes", maxBackupLine)
	case errors.Is(err, io.EOF):
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	return bytes.Clone(line[:len(line)-1]), nil
}
