package boot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const reaperChildEnv = "BERTH_REAPER_TEST_CHILD"

// TestReaperKeepsOwnStatuses runs the reaper in a re-executed test binary
// that is a child subreaper (as PID 1 is for the whole system): commands
// run through the reaper must all get their own exit status, while the
// orphans they leave behind must still be reaped.
func TestReaperKeepsOwnStatuses(t *testing.T) {
	if os.Getenv(reaperChildEnv) == "1" {
		reaperChild(t)
		return
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatal("sh is needed to make orphans:", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReaperKeepsOwnStatuses$", "-test.count=1")
	cmd.Env = append(os.Environ(), reaperChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func reaperChild(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal("PR_SET_CHILD_SUBREAPER:", err)
	}
	var r Reaper
	go r.Loop()

	// Orphan makers: each shell backgrounds a short sleep, prints its
	// pid and exits, so the sleep is re-parented to this process.
	var orphans []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			var out bytes.Buffer
			cmd := exec.Command("sh", "-c", "sleep 0.2 & echo $!")
			cmd.Stdout = &out
			if err := r.Run(cmd); err != nil {
				t.Errorf("orphan maker: %v", err)
				return
			}
			pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
			if err != nil {
				t.Errorf("orphan pid %q: %v", out.String(), err)
				return
			}
			mu.Lock()
			orphans = append(orphans, pid)
			mu.Unlock()
		})
	}
	for i := range 20 {
		wg.Go(func() {
			code := i % 7
			err := r.Run(exec.Command("sh", "-c", fmt.Sprintf("exit %d", code)))
			var ee *exec.ExitError
			switch {
			case code == 0 && err != nil:
				t.Errorf("command %d: want success, got %v", i, err)
			case code != 0 && !errors.As(err, &ee):
				t.Errorf("command %d: want exit status %d, got %v", i, code, err)
			case code != 0 && ee.ExitCode() != code:
				t.Errorf("command %d: want exit status %d, got %d", i, code, ee.ExitCode())
			}
		})
	}
	wg.Wait()

	// Each orphan must be reaped once it exits: its /proc entry goes away.
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range orphans {
		for {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("orphan %d was never reaped", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
