package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	// ErrNotLeader is returned by Propose on a master that does not lead;
	// the proposal was not made and may be sent to the leader.
	ErrNotLeader = errors.New("store: not the raft leader")
	// ErrRejected wraps the error with which the FSM refused a batch. The
	// batch changed nothing, and proposing it again fails the same way.
	ErrRejected = errors.New("store: batch rejected")
	// ErrClosed is returned once the store is closed.
	ErrClosed = errors.New("store: closed")
)

// snapshotsRetained keeps one older snapshot on disk for an operator to
// fall back to by hand; Open itself only ever uses the newest.
const snapshotsRetained = 2

// Config says where a master keeps its Raft data and how it reaches peers.
type Config struct {
	// DataDir holds raft/raft.db (log and stable store) and
	// raft/snapshots.
	DataDir string
	// NodeID is this master's Raft server ID; it must stay the same across
	// restarts on the same DataDir.
	NodeID string
	// BindAddr is the Raft transport's listen address, e.g. "10.0.0.1:7444"
	// or ":7444".
	BindAddr string
	// Advertise is the address peers dial; it is recorded in the cluster
	// configuration, so it must stay the same across restarts. Empty means
	// BindAddr, which must then name an interface.
	Advertise string
	// TLS, when set, runs Raft's transport over mutual TLS: it must carry
	// this master's certificate, RootCAs and ClientCAs of the cluster CA,
	// and ClientAuth tls.RequireAndVerifyClientCert. Peers' certificates
	// are checked against the host of the address they are dialled at
	// unless ServerName is set. Nil keeps plain TCP, for tests.
	TLS *tls.Config
	// SnapshotThreshold, SnapshotInterval and TrailingLogs tune when Raft
	// snapshots and how many entries it keeps after a snapshot for slow
	// followers; zero keeps Raft's defaults (8192, 120s, 10240).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// Bootstrap makes a DataDir without Raft state the first voter of a new
	// cluster. It is ignored when the DataDir has state. A new DataDir
	// without it waits for a leader to add it (AddVoter).
	Bootstrap bool
	// Logger gets the store's logs and Raft's warnings and errors; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Store is the replicated cluster state of one master.
type Store struct {
	log    *slog.Logger
	id     string
	dir    string // DataDir/raft
	fsm    *fsm
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	stream *streamLayer
	bolt   *raftboltdb.BoltStore
	snaps  *raft.FileSnapshotStore
	// openedAt and lastAtOpen tell Ready what a restarted member had in its
	// log: probably committed, not yet known to be.
	openedAt   time.Time
	lastAtOpen uint64

	done      chan struct{} // closed by Close
	watcher   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	mu            sync.Mutex
	closed        bool
	leading       bool
	leaderChanged chan struct{} // closed when leading changes
}

// Open starts this master's Raft node on cfg.DataDir. A DataDir with state
// comes back with exactly that state once its log is replayed; one whose
// newest snapshot cannot be read fails Open rather than start from less.
func Open(cfg Config) (_ *Store, err error) {
	if cfg.DataDir == "" || cfg.NodeID == "" || cfg.BindAddr == "" {
		return nil, errors.New("store: DataDir, NodeID and BindAddr are required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	hlog := newRaftLogger(logger)

	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	dbPath := filepath.Join(dir, "raft.db")
	// The timeout turns a second process on the same DataDir into an error
	// instead of a hang on bolt's file lock.
	err = checkRaftDB(dbPath)
	var bolt *raftboltdb.BoltStore
	if err == nil {
		bolt, err = raftboltdb.New(raftboltdb.Options{Path: dbPath, BoltOptions: &bbolt.Options{Timeout: time.Second}})
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is locked: another berth master is running on this data directory", dbPath)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening the raft log %s: %w", dbPath, err)
	}
	defer func() {
		if err != nil {
			bolt.Close()
		}
	}()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetained, hlog)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f := newFSM()
	if err := restoreNewest(f, bolt, snaps, filepath.Join(dir, "snapshots")); err != nil {
		return nil, err
	}

	trans, stream, err := newTransport(cfg, hlog)
	if err != nil {
		return nil, fmt.Errorf("store: raft transport on %s: %w", cfg.BindAddr, err)
	}
	defer func() {
		if err != nil {
			trans.Close()
		}
	}()

	rc := raftConfig(cfg, hlog)
	existing, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		return nil, fmt.Errorf("store: reading raft state: %w", err)
	}
	if cfg.Bootstrap && !existing {
		servers := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, bolt, bolt, snaps, trans, servers); err != nil {
			return nil, fmt.Errorf("store: bootstrapping: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, f, bolt, bolt, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("store: starting raft: %w", err)
	}

	s := &Store{
		log: logger, id: cfg.NodeID, dir: dir, fsm: f, raft: r,
		trans: trans, stream: stream, bolt: bolt, snaps: snaps,
		openedAt: time.Now(), lastAtOpen: r.LastIndex(),
		done:          make(chan struct{}),
		leaderChanged: make(chan struct{}),
	}
	s.watcher.Add(1)
	go s.watchLeadership()
	return s, nil
}

func raftConfig(cfg Config, logger hclog.Logger) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(cfg.NodeID)
	c.Logger = logger
	// Masters share a LAN, where half a second without a heartbeat means a
	// dead leader; the defaults double the time to elect a new one.
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	// Open has restored the newest snapshot already; see restoreNewest.
	c.NoSnapshotRestoreOnStart = true
	if cfg.SnapshotThreshold > 0 {
		c.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		c.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.TrailingLogs > 0 {
		c.TrailingLogs = cfg.TrailingLogs
	}
	return c
}

// restoreNewest loads the newest snapshot into f before Raft starts, so a
// snapshot that cannot be read stops Open with its cause. Raft on its own
// would log the cause and fall back to an older snapshot or none, and then
// panic (or serve less state) when compaction has removed the log entries
// in between.
func restoreNewest(f *fsm, logs raft.LogStore, snaps raft.SnapshotStore, snapDir string) error {
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("store: listing snapshots in %s: %w", snapDir, err)
	}
	var covered uint64
	if len(list) > 0 {
		meta := list[0]
		path := filepath.Join(snapDir, meta.ID)
		_, rc, err := snaps.Open(meta.ID)
		if err != nil {
			return fmt.Errorf("store: snapshot %s is unreadable: %w", path, err)
		}
		if err := f.Restore(rc); err != nil {
			return fmt.Errorf("store: snapshot %s: %w", path, err)
		}
		// A restored backup carries the index it was saved at, lower than
		// where Raft installed it; the state is as of meta.Index, and
		// readers' blocking queries must never see the index go back.
		if st := f.cur.Load().state; st.Index < meta.Index {
			next := *st
			next.Index = meta.Index
			f.publish(&next)
		}
		covered = meta.Index
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("store: reading the raft log: %w", err)
	}
	if first > covered+1 {
		return fmt.Errorf("store: the raft log starts at index %d but no readable snapshot reaches index %d; refusing to start with entries missing", first, first-1)
	}
	return nil
}

// Propose commits batch through Raft and returns the index at which it
// applied. A batch the FSM refuses returns an ErrRejected error. If ctx ends
// first, the batch may still commit.
func (s *Store) Propose(ctx context.Context, batch []state.Command) (uint64, error) {
	if len(batch) == 0 {
		return 0, errors.New("store: empty batch")
	}
	data, err := json.Marshal(batch)
	if err != nil {
		return 0, fmt.Errorf("store: encoding batch: %w", err)
	}
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return 0, err
	}
	future := s.raft.Apply(data, timeout)
	if err := s.await(ctx, future); err != nil {
		return 0, err
	}
	if err, ok := future.Response().(error); ok {
		return 0, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return future.Index(), nil
}

func (s *Store) raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		if addr, id := s.raft.LeaderWithID(); addr != "" {
			return fmt.Errorf("%w (the leader is %s at %s)", ErrNotLeader, id, addr)
		}
		return ErrNotLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrLeadershipLost):
		// Not ErrNotLeader: the entry may commit under the next leader, so
		// sending it again could apply it twice.
		return fmt.Errorf("store: leadership lost before the change was known to commit: %w", err)
	}
	return fmt.Errorf("store: %w", err)
}

// State returns the current state. Every reader shares it and nothing
// changes it (each applied batch makes a new one, see Apply), so it is read
// without a lock and without copying; callers must not write to it.
func (s *Store) State() *state.State {
	return s.fsm.cur.Load().state
}

// Halted is closed when this member met a log entry it cannot apply (a
// command of a newer berth); HaltError then says which. The member has
// stopped applying entries and must be upgraded and restarted.
func (s *Store) Halted() <-chan struct{} { return s.fsm.halted }

// HaltError is why the member halted, nil while it has not.
func (s *Store) HaltError() error {
	if err := s.fsm.halt.Load(); err != nil {
		return *err
	}
	return nil
}

// Wait blocks until the state's Index is above afterIndex, and returns the
// Index. It returns early with ctx's error, or ErrClosed.
func (s *Store) Wait(ctx context.Context, afterIndex uint64) (uint64, error) {
	for {
		p := s.fsm.cur.Load()
		if p.state.Index > afterIndex {
			return p.state.Index, nil
		}
		select {
		case <-p.next:
		case <-ctx.Done():
			return p.state.Index, ctx.Err()
		case <-s.done:
			return p.state.Index, ErrClosed
		}
	}
}

// IsLeader reports whether this master leads and has applied every entry
// committed before its term.
func (s *Store) IsLeader() bool {
	leading, _ := s.Leadership()
	return leading
}

// Leadership returns IsLeader and a channel closed at the next change, for
// starting and stopping the leader-only controllers:
//
//	for {
//		leading, changed := st.Leadership()
//		// start or stop controllers
//		<-changed
//	}
func (s *Store) Leadership() (leading bool, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading, s.leaderChanged
}

func (s *Store) setLeading(leading bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leading == leading || (leading && s.closed) {
		return
	}
	s.leading = leading
	close(s.leaderChanged)
	s.leaderChanged = make(chan struct{})
	s.log.Info("raft leadership changed", "leader", leading)
}

func (s *Store) watchLeadership() {
	defer s.watcher.Done()
	ch := s.raft.LeaderCh()
	for {
		select {
		case <-s.done:
			return
		case leading := <-ch:
			// Raft reports leadership before the new leader has applied the
			// entries of earlier terms; controllers must not decide on
			// that state, so wait for a barrier first.
			if leading {
				if err := s.raft.Barrier(0).Error(); err != nil {
					if !errors.Is(err, raft.ErrRaftShutdown) {
						s.log.Warn("raft leadership ended before its barrier", "err", err)
					}
					continue
				}
			}
			s.setLeading(leading)
		}
	}
}

// Snapshot makes Raft snapshot the state now and compact its log.
func (s *Store) Snapshot() error {
	err := s.raft.Snapshot().Error()
	if err == nil || errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return s.raftError(err)
}

// Close stops Raft and releases the data dir. Waiters get ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Controllers stop before waiters see ErrClosed.
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.setLeading(false)
		close(s.done)
		err := s.raft.Shutdown().Error()
		s.watcher.Wait()
		terr := s.trans.Close()
		// Raft's heartbeat handler writes the term to bolt and is still
		// running on connections from peers; closing bolt under it panics.
		s.stream.drain()
		s.closeErr = errors.Join(err, terr, s.bolt.Close())
	})
	return s.closeErr
}

// newRaftLogger passes Raft's warnings and errors to l. Raft logs every
// heartbeat and vote below that, which an appliance's log does not need.
func newRaftLogger(l *slog.Logger) hclog.Logger {
	hl := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: io.Discard})
	hl.RegisterSink(slogSink{l})
	return hl
}

type slogSink struct{ l *slog.Logger }

func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	var l slog.Level
	switch level {
	case hclog.Warn:
		l = slog.LevelWarn
	case hclog.Error:
		l = slog.LevelError
	default:
		return
	}
	s.l.Log(context.Background(), l, msg, append(args, "logger", name)...)
}
