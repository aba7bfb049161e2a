package boot

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Reaper reaps the orphans that PID 1 (or a child subreaper) adopts
// without stealing the exit status of the commands this process runs
// itself. A blind Wait4(-1) races exec.Cmd.Wait: whichever waits first
// gets the status, so a command that succeeded reports "no child
// processes". Peeking with waitid(WNOWAIT) and skipping our own pids is
// racy too (a command can exit before its pid is registered, and a
// skipped zombie keeps waitid spinning), so the reaper and our commands
// are serialised instead: commands hold the read lock from Start to Wait,
// and the reaper reaps only under the write lock, when none of ours can
// be a zombie it might take. Every command PID 1 runs must go through Run.
type Reaper struct {
	mu sync.RWMutex
}

// Run runs cmd (Start and Wait) so that the reaper cannot take its status.
func (r *Reaper) Run(cmd *exec.Cmd) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return cmd.Run()
}

// Loop reaps adopted children on every SIGCHLD; it never returns.
func (r *Reaper) Loop() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	for {
		r.reapAll()
		<-ch
	}
}

// reapAll reaps every exited child without blocking. SIGCHLDs coalesce,
// so one signal may stand for many exits.
func (r *Reaper) reapAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
