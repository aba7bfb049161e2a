package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/diag"
)

func newSyncCmd() *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sync [--wait [--timeout 2m]]",
		Short: "Make the masters fetch the config repository now",
		Long: `sync makes the leading master fetch its config repository at once, as a
push webhook would, instead of at the next poll. It needs an admin token.

With --wait it waits until that fetch's commit is recorded and prints the
outcome: applied, or rejected with the problems the masters found.

Exit status: 0 when triggered (with --wait: the head is applied), 1 when
the fetch failed, the head was rejected or the wait timed out, 2 for usage
errors.`,
		Args: cobra.NoArgs,
	}
	client := clientFlag(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the fetched commit to be applied or rejected")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if timeout <= 0 {
			return &exitError{2, fmt.Errorf("--timeout %s: want a positive duration", timeout)}
		}
		if cmd.Flags().Changed("timeout") && !wait {
			return &exitError{2, errors.New("--timeout is for --wait")}
		}
		c, err := client()
		if err != nil {
			return err
		}
		var d time.Duration
		if wait {
			d = timeout
		}
		res, err := c.Sync(cmd.Context(), d)
		if err != nil {
			return &exitError{1, err}
		}
		out := cmd.OutOrStdout()
		if !res.Waited {
			fmt.Fprintln(out, "sync triggered")
			return nil
		}
		return syncOutcome(out, res)
	}
	return cmd
}

// syncOutcome prints what the waited-for sync did, and its exit status.
func syncOutcome(w io.Writer, res api.SyncResult) error {
	if res.Sync.State == "error" {
		return &exitError{1, fmt.Errorf("sync failed: %s", res.Sync.LastError)}
	}
	rev := res.Revision
	if rev == nil {
		return &exitError{1, fmt.Errorf("sync ended with no revision recorded (state %s)", res.Sync.State)}
	}
	fmt.Fprintf(w, "%s %s: %s\n", rev.Status, short(rev.Commit), firstLine(rev.Message))
	for _, d := range rev.Diagnostics {
		fmt.Fprintln(w, " ", d.String())
	}
	switch rev.Status {
	case state.RevisionRejected:
		return &exitError{1, fmt.Errorf("commit %s was rejected: %d errors", short(rev.Commit), countSeverity(rev.Diagnostics, diag.Error))}
	case state.RevisionApplied:
		return nil
	}
	// Superseded: the head is an older commit than the applied one (a
	// force-push back), already recorded.
	return &exitError{1, fmt.Errorf("the branch head %s is %s", short(rev.Commit), rev.Status)}
}

func countSeverity(ds []diag.Diagnostic, s diag.Severity) int {
	n := 0
	for _, d := range ds {
		if d.Severity == s {
			n++
		}
	}
	return n
}
