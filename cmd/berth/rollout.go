package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/retry"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
)

func newRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Follow the rollout of a deployment, statefulset or daemonset, or list the commits that changed it",
	}
	cmd.AddCommand(newRolloutStatusCmd(), newRolloutHistoryCmd())
	return cmd
}

// rolloutTarget reads KIND/NAME or KIND NAME, as kubectl takes them.
func rolloutTarget(args []string) (kind, name string, err error) {
	arg := args[0]
	if len(args) == 2 {
		arg = args[0] + "/" + args[1]
	}
	k, n, ok := strings.Cut(arg, "/")
	if !ok || n == "" || strings.Contains(n, "/") {
		return "", "", &exitError{2, fmt.Errorf("%q: want KIND/NAME or KIND NAME, such as deployment/web", strings.Join(args, " "))}
	}
	kind, err = resourceKind(k)
	if err == nil && kind != "deployments" && kind != "statefulsets" && kind != "daemonsets" {
		err = &exitError{2, fmt.Errorf("%s have no rollouts: want a deployment, statefulset or daemonset", kind)}
	}
	return kind, n, err
}

func newRolloutStatusCmd() *cobra.Command {
	var namespace, commit string
	var timeout time.Duration
	var watch bool
	cmd := &cobra.Command{
		Use:   "status KIND/NAME",
		Short: "Wait for a rollout to finish: exit 0 once it has, 1 when it exceeds its progress deadline or a newer commit replaces it",
		Long: `status follows the rollout of a deployment, statefulset or daemonset
of the applied revision until every replica of its template is updated and
available, printing kubectl's messages as it goes. It exits 1 when a
Deployment's rollout exceeds its progressDeadlineSeconds, when a newer
commit changes or removes the object first, or at --timeout.

Right after a git push the masters may not have synced the commit yet;
--commit SHA (or a prefix) first waits until that commit is applied, and
exits 1 if it was rejected, so that a CI job never reports the previous
rollout's success as its own.`,
		Args: cobra.RangeArgs(1, 2),
	}
	client := clientFlag(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the object's namespace")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait before giving up (0: as long as it takes)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", true, "wait for the rollout to finish; --watch=false prints where it stands")
	cmd.Flags().StringVar(&commit, "commit", "", "first wait until this commit (a prefix will do) is applied; exit 1 if it is rejected")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kind, name, err := rolloutTarget(args)
		if err != nil {
			return err
		}
		if timeout < 0 {
			return &exitError{2, fmt.Errorf("--timeout %s: want a duration of 0 or more", timeout)}
		}
		c, err := client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		if commit != "" {
			if err := waitCommit(ctx, c, cmd.OutOrStdout(), commit); err != nil {
				return err
			}
		}
		return followRollout(ctx, c, cmd.OutOrStdout(), kind, namespace, name, watch)
	}
	return cmd
}

// commitPoll is how often waitCommit asks for the revisions.
const commitPoll = time.Second

// waitCommit waits until the newest revision of commit is recorded, and
// fails if it was rejected.
func waitCommit(ctx context.Context, c *api.Client, w io.Writer, commit string) error {
	for said := false; ; said = true {
		revs, err := c.Revisions(ctx)
		if ctx.Err() != nil {
			return &exitError{1, fmt.Errorf("timed out waiting for commit %s to be synced", commit)}
		}
		if err != nil {
			return &exitError{1, err}
		}
		for _, r := range revs { // newest first
			if !strings.HasPrefix(r.Commit, commit) {
				continue
			}
			if r.Status == state.RevisionRejected {
				first := ""
				if len(r.Diagnostics) > 0 {
					first = ": " + r.Diagnostics[0].String()
				}
				return &exitError{1, fmt.Errorf("commit %s was rejected, nothing of it rolls out%s", short(r.Commit), first)}
			}
			return nil
		}
		if !said {
			fmt.Fprintf(w, "Waiting for commit %s to be synced...\n", commit)
		}
		if !retry.Sleep(ctx, commitPoll) {
			return &exitError{1, fmt.Errorf("timed out waiting for commit %s to be synced", commit)}
		}
	}
}

// rolloutPoll bounds each wait for a change: a progress deadline passes
// with no change in the state.
const rolloutPoll = 5 * time.Second

// followRollout prints each new message of the rollout until it is done.
func followRollout(ctx context.Context, c *api.Client, w io.Writer, kind, namespace, name string, watch bool) error {
	var last, first string
	var index uint64
	for {
		var wt *api.Watch
		if index > 0 {
			wt = &api.Watch{Index: index, Wait: rolloutPoll}
		}
		v, idx, err := c.Rollout(ctx, kind, namespace, name, wt)
		if ctx.Err() != nil {
			return &exitError{1, fmt.Errorf("timed out waiting for %s %q to roll out; last: %s", singular(kind), name, strings.TrimSuffix(last, "\n"))}
		}
		if err != nil {
			return &exitError{1, err}
		}
		index = idx
		if first == "" {
			first = v.Revision
		}
		if v.Revision != first {
			return &exitError{1, fmt.Errorf("%s %q was changed again by commit %s before its rollout of %s finished", singular(kind), name, short(v.Revision), short(first))}
		}
		msg, done := rolloutMessage(v)
		if msg != last {
			fmt.Fprint(w, msg)
			last = msg
		}
		switch {
		case done:
			return nil
		case v.Reason == reconcile.ProgressDeadlineExceeded:
			return &exitError{1, fmt.Errorf("deployment %q exceeded its progress deadline", name)}
		case !watch:
			return nil
		}
	}
}

func singular(kind string) string { return strings.TrimSuffix(kind, "s") }

// rolloutMessage is kubectl's rollout status line for where v stands,
// and whether the rollout is done.
func rolloutMessage(v reconcile.RolloutView) (string, bool) {
	switch v.Kind {
	case "Deployment":
		pre := fmt.Sprintf("Waiting for deployment %q rollout to finish: ", v.Name)
		switch {
		case v.Reason == reconcile.DeploymentPaused:
			return fmt.Sprintf("Waiting for deployment %q rollout to finish: the deployment is paused (spec.paused)\n", v.Name), false
		case v.Updated < v.Desired:
			return pre + fmt.Sprintf("%d out of %d new replicas have been updated...\n", v.Updated, v.Desired), false
		case v.Current > v.Updated:
			return pre + fmt.Sprintf("%d old replicas are pending termination...\n", v.Current-v.Updated), false
		case v.Available < v.Updated:
			return pre + fmt.Sprintf("%d of %d updated replicas are available...\n", v.Available, v.Updated), false
		case v.Done:
			return fmt.Sprintf("deployment %q successfully rolled out\n", v.Name), true
		}
	case reconcile.KindDaemonSet:
		pre := fmt.Sprintf("Waiting for daemon set %q rollout to finish: ", v.Name)
		switch {
		case v.Strategy == "OnDelete" && v.Ready < v.Desired:
			return pre + fmt.Sprintf("%d of %d pods are ready (OnDelete: pods take the new template when deleted)...\n", v.Ready, v.Desired), false
		case v.Strategy != "OnDelete" && v.Updated < v.Desired:
			return pre + fmt.Sprintf("%d out of %d new pods have been updated...\n", v.Updated, v.Desired), false
		case v.Strategy != "OnDelete" && v.Available < v.Desired:
			return pre + fmt.Sprintf("%d of %d updated pods are available...\n", v.Available, v.Desired), false
		case v.Done:
			return fmt.Sprintf("daemon set %q successfully rolled out\n", v.Name), true
		}
	case reconcile.KindStatefulSet:
		switch {
		case v.Ready < v.Desired:
			return fmt.Sprintf("Waiting for %d pods to be ready...\n", v.Desired-v.Ready), false
		case v.Current > v.Desired:
			return fmt.Sprintf("Waiting for %d pods to be deleted...\n", v.Current-v.Desired), false
		case v.Strategy == "OnDelete" && v.Done:
			return fmt.Sprintf("statefulset %q: %d pods ready (OnDelete: pods take the new template when deleted)\n", v.Name, v.Ready), true
		case v.Partition > 0 && v.Updated < v.Desired-v.Partition:
			return fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...\n", v.Updated, v.Desired-v.Partition), false
		case v.Partition > 0 && v.Done:
			return fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...\n", v.Updated), true
		case v.Updated < v.Desired:
			return fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...\n", v.Updated, short(v.Revision)), false
		case v.Done:
			return fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...\n", v.Updated, short(v.Revision)), true
		}
	}
	return fmt.Sprintf("Waiting for %s %q rollout to finish...\n", strings.ToLower(v.Kind), v.Name), false
}

func newRolloutHistoryCmd() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "history KIND/NAME",
		Short: "List the kept revisions (commits) that created, changed or removed a deployment, statefulset or daemonset",
		Args:  cobra.RangeArgs(1, 2),
	}
	client := clientFlag(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the object's namespace")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kind, name, err := rolloutTarget(args)
		if err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		h, err := c.RolloutHistory(cmd.Context(), kind, namespace, name)
		if err != nil {
			return &exitError{1, err}
		}
		t := newTable(cmd.OutOrStdout())
		t.row("REVISION", "COMMIT", "CHANGE", "STATUS", "CONVERGED", "AGE", "AUTHOR", "MESSAGE")
		for i, e := range h {
			t.row(i+1, short(e.Commit), e.Change, e.Status, api.Converged(e.RevisionTiming, e.Status), age(e.Time), e.Author, firstLine(e.Message))
		}
		return t.flush()
	}
	return cmd
}
