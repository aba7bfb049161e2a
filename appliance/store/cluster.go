package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Member is one server of the Raft configuration.
type Member struct {
	ID      string
	Address string
	Voter   bool
	Leader  bool
}

// ID is this master's Raft server ID.
func (s *Store) ID() string { return s.id }

// Addr is the address peers dial this master at: Config.Advertise, or the
// address the transport bound (with the port chosen when BindAddr's is 0).
func (s *Store) Addr() string { return s.stream.Addr().String() }

// Leader returns the leader this master knows of, or empty strings.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// Members lists the servers of the latest Raft configuration, which may
// not have committed yet.
func (s *Store) Members() ([]Member, error) {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return nil, s.raftError(err)
	}
	_, leader := s.raft.LeaderWithID()
	var out []Member
	for _, srv := range future.Configuration().Servers {
		out = append(out, Member{
			ID:      string(srv.ID),
			Address: string(srv.Address),
			Voter:   srv.Suffrage == raft.Voter,
			Leader:  srv.ID == leader,
		})
	}
	return out, nil
}

// joinCheckTimeout bounds the dial AddVoter makes before changing the
// configuration.
const joinCheckTimeout = 5 * time.Second

// AddVoter makes the master id at addr a voter, once it has caught up with
// the log. Adding a member again with the same address changes nothing.
//
// A new voter counts towards the quorum from the moment it is added, so
// AddVoter first dials addr over the Raft transport (and its TLS): a
// server that cannot be reached, or whose certificate the cluster does not
// trust, is refused before it can stall the cluster.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return errors.New("store: AddVoter needs an ID and an address")
	}
	if s.raft.State() != raft.Leader {
		return s.raftError(raft.ErrNotLeader)
	}
	members, err := s.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		switch {
		case m.ID == id && m.Address == addr && m.Voter:
			return nil
		case m.ID != id && m.Address == addr:
			return fmt.Errorf("store: %s is already the address of member %s", addr, m.ID)
		}
	}
	if id != s.id {
		conn, err := s.stream.Dial(raft.ServerAddress(addr), joinCheckTimeout)
		if err != nil {
			return fmt.Errorf("store: cannot reach %s at %s over the raft transport: %w", id, addr, err)
		}
		conn.Close()
	}
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return err
	}
	return s.await(ctx, s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout))
}

// RemoveServer takes the master id out of the cluster. Removing an ID that
// is not a member changes nothing. A leader that removes itself steps down
// once the change commits.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	if s.raft.State() != raft.Leader {
		return s.raftError(raft.ErrNotLeader)
	}
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return err
	}
	return s.await(ctx, s.raft.RemoveServer(raft.ServerID(id), 0, timeout))
}

// VerifyLeader confirms with a quorum that this master still leads. A
// leader cut off from the quorum fails it, with ErrNotLeader, and so never
// serves a read as current that a newer leader may have overtaken.
func (s *Store) VerifyLeader(ctx context.Context) error {
	err := s.await(ctx, s.raft.VerifyLeader())
	if errors.Is(err, raft.ErrLeadershipLost) {
		// Nothing was written, so unlike a lost proposal this is a plain
		// "ask the leader".
		return s.raftError(raft.ErrNotLeader)
	}
	return err
}

// enqueueTimeout turns ctx's deadline into the timeout Raft's calls take
// for handing a request to the Raft goroutine; zero waits.
func enqueueTimeout(ctx context.Context) (time.Duration, error) {
	d, ok := ctx.Deadline()
	if !ok {
		return 0, nil
	}
	timeout := time.Until(d)
	if timeout <= 0 {
		return 0, ctx.Err()
	}
	return timeout, nil
}

// await waits for future or ctx. When ctx ends first the request may still
// take effect.
// TransferLeadership hands leadership to another voter and returns once
// one has it: a leader about to leave must not remove itself, since Raft
// shuts a removed leader down before it can record anything else.
func (s *Store) TransferLeadership(ctx context.Context) error {
	if err := s.await(ctx, s.raft.LeadershipTransfer()); err != nil {
		return err
	}
	for {
		if id, _ := s.Leader(); id != "" && id != s.id {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Store) await(ctx context.Context, future raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- future.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return s.raftError(err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready says whether this member can serve reads of the cluster's state: a
// leader is known and everything committed that this member knows of has
// been applied here.
//
// A restarted member learns the commit index only from a leader, which
// learns it only once it commits an entry of its own term; until then the
// index reads 0 (or an old snapshot's). So the member also waits until the
// commit index reaches what its own log held at start, for at most
// readyGrace: an uncommitted tail that a new leader discards would
// otherwise keep it unready until the next write.
func (s *Store) Ready() error {
	if id, _ := s.Leader(); id == "" {
		return errors.New("no leader yet")
	}
	applied, committed := s.raft.AppliedIndex(), s.raft.CommitIndex()
	switch {
	case committed == 0 && s.lastAtOpen > 0:
		return errors.New("catching up: no commit index from the leader yet")
	case committed < s.lastAtOpen && time.Since(s.openedAt) < readyGrace:
		return fmt.Errorf("catching up: committed %d of the %d entries in the log at start", committed, s.lastAtOpen)
	case applied < committed:
		return fmt.Errorf("catching up: applied %d of %d committed entries", applied, committed)
	}
	return nil
}

const readyGrace = 30 * time.Second
