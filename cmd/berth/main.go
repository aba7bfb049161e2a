// Command berth is the one binary of the berth cluster appliance. Each
// subcommand is a thin layer over the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"os"
	// CronJobs' timeZone, on masters without a zoneinfo database (the
	// appliance image).
	_ "time/tzdata"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	root := newRootCmd()
	err := root.Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "berth:", explain(ee.err))
		}
		os.Exit(ee.code)
	}
	// Anything cobra returns itself is a usage error: bad flag, bad command.
	fmt.Fprintln(os.Stderr, "berth:", err)
	os.Exit(2)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "A declarative, GitOps-driven cluster appliance",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newValidateCmd(), newGetCmd(), newDescribeCmd(), newStatusCmd(),
		newUpCmd(), newDownCmd(), newAgentCmd(), newLogsCmd(), newBootCmd(),
		newMasterCmd(), newTokenCmd(), newDeleteCmd())
	root.AddCommand(newExecCmd(), newPortForwardCmd(), newTopCmd())
	root.AddCommand(newCordonCmds()...)
	root.AddCommand(newRolloutCmd())
	root.AddCommand(newDiffCmd(), newSyncCmd(), newVersionCmd())
	addCompletions(root)
	return root
}
