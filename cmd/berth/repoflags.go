package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance"
)

// repoFlags say which config repository a master follows, for `berth
// master` and `berth up`.
type repoFlags struct {
	repo, branch, path, username, passwordFile string
	poll                                       time.Duration
}

func (f *repoFlags) add(cmd *cobra.Command, repoHelp string) {
	cmd.Flags().StringVar(&f.repo, "repo", "", repoHelp)
	cmd.Flags().StringVar(&f.branch, "branch", "", "branch to follow (default: the remote's HEAD)")
	cmd.Flags().StringVar(&f.path, "path", "", "directory of the repository to read (default: its root)")
	cmd.Flags().DurationVar(&f.poll, "poll", 15*time.Second, "how often to fetch the repository")
	cmd.Flags().StringVar(&f.username, "repo-username", "", "user name for an http(s) repository (basic auth)")
	cmd.Flags().StringVar(&f.passwordFile, "repo-password-file", "", "file holding the password or access token for an http(s) repository (a file, so that it shows in no process list)")
}

// apply sets cfg's repository fields, reading the password file.
func (f *repoFlags) apply(cfg *appliance.Config) error {
	cfg.Repo, cfg.Branch, cfg.Path, cfg.Poll, cfg.RepoUsername = f.repo, f.branch, f.path, f.poll, f.username
	if f.passwordFile == "" {
		return nil
	}
	b, err := os.ReadFile(f.passwordFile)
	if err != nil {
		return fmt.Errorf("--repo-password-file: %w", err)
	}
	cfg.RepoPassword = strings.TrimRight(string(b), "\r\n")
	if cfg.RepoPassword == "" {
		return fmt.Errorf("--repo-password-file: %s is empty", f.passwordFile)
	}
	return nil
}
