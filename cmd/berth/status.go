package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
)

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the applied commit, the sync state and the last error",
		Args:  cobra.NoArgs,
	}
	client := clientFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		st, err := c.Status(cmd.Context())
		if err != nil {
			return &exitError{1, err}
		}
		printStatus(cmd.OutOrStdout(), st)
		return nil
	}
	return cmd
}

// printStatus writes `berth status`: what runs, whether the branch head
// is what runs, the rollouts still going and how the last one ended.
func printStatus(w io.Writer, st api.Status) {
	fmt.Fprintf(w, "commit:     %s\n", orNone(st.Commit))
	sync := st.Sync.State
	if h := st.RejectedHead; h != nil {
		// Recorded, but not running: the cluster is not at the head,
		// which "synced" alone would claim.
		rejected := fmt.Sprintf("head rejected: %s failed validation, %s still runs", short(h.Commit), orNone(short(st.Commit)))
		if sync == "synced" {
			sync = rejected
		} else {
			sync += "; " + rejected
		}
	}
	fmt.Fprintf(w, "sync:       %s", sync)
	if st.Sync.Repo != "" {
		fmt.Fprintf(w, " (%s, branch %s)", st.Sync.Repo, st.Sync.Branch)
	}
	fmt.Fprintln(w)
	if h := st.RejectedHead; h != nil {
		fmt.Fprintf(w, "rejected:   %s %q by %s\n", short(h.Commit), firstLine(h.Message), h.Author)
		for _, d := range h.Diagnostics {
			fmt.Fprintf(w, "            %s\n", d.String())
		}
	}
	if !st.Sync.LastSync.IsZero() {
		fmt.Fprintf(w, "last sync:  %s ago\n", age(st.Sync.LastSync))
	}
	if st.Sync.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", st.Sync.LastError)
	}
	fmt.Fprintf(w, "nodes:      %d/%d ready\n", st.ReadyNodes, st.Nodes)
	fmt.Fprintf(w, "pods:       %d/%d ready\n", st.ReadyPods, st.Pods)
	for _, v := range st.Rollouts {
		line := fmt.Sprintf("%s %s/%s: %d/%d ready, %d/%d updated", strings.ToLower(v.Kind), v.Namespace, v.Name, v.Ready, v.Desired, v.Updated, v.Desired)
		if v.Reason != "" {
			line += ", " + v.Reason
		}
		fmt.Fprintf(w, "rollout:    %s\n", line)
	}
	if r := st.LastSettled; r != nil {
		fmt.Fprintf(w, "outcome:    %s %s\n", short(r.Commit), api.Outcome(r.RevisionTiming, r.Status))
	}
}
