package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/appliance/state"
)

// repoFlags say which config repository a master follows, for `berth
// master` and `berth up`.
type repoFlags struct {
	repo, branch, path, username, passwordFile string
	poll                                       time.Duration
	history                                    int
	webhookSecretFile                          string
	webhookAllowUnsigned                       bool
}

func (f *repoFlags) add(cmd *cobra.Command, repoHelp string) {
	cmd.Flags().StringVar(&f.repo, "repo", "", repoHelp)
	cmd.Flags().StringVar(&f.branch, "branch", "", "branch to follow (default: the remote's HEAD)")
	cmd.Flags().StringVar(&f.path, "path", "", "directory of the repository to read (default: its root)")
	cmd.Flags().DurationVar(&f.poll, "poll", 15*time.Second, "how often to fetch the repository")
	cmd.Flags().IntVar(&f.history, "revision-history", state.DefaultRevisionHistory, "how many revisions the cluster keeps (and the applied one, if older)")
	cmd.Flags().StringVar(&f.username, "repo-username", "", "user name for an http(s) repository (basic auth)")
	cmd.Flags().StringVar(&f.passwordFile, "repo-password-file", "", "file holding the password or access token for an http(s) repository (a file, so that it shows in no process list)")
	cmd.Flags().StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding the push webhook's secret: POST /v1/webhook then needs X-Hub-Signature-256 (GitHub), X-Gitlab-Token (GitLab) or X-Berth-Signature-256 made with it")
	cmd.Flags().BoolVar(&f.webhookAllowUnsigned, "webhook-allow-unsigned", false, "accept push webhook calls that carry no signature (anyone who reaches the API may then trigger fetches)")
}

// apply sets cfg's repository fields, reading the secret files.
func (f *repoFlags) apply(cfg *appliance.Config) error {
	cfg.Repo, cfg.Branch, cfg.Path, cfg.Poll, cfg.RepoUsername = f.repo, f.branch, f.path, f.poll, f.username
	cfg.WebhookAllowUnsigned = f.webhookAllowUnsigned
	if f.history < 0 {
		return fmt.Errorf("--revision-history %d: want a count (0 for the default, %d)", f.history, state.DefaultRevisionHistory)
	}
	cfg.RevisionHistory = f.history
	var err error
	if f.passwordFile != "" {
		if cfg.RepoPassword, err = readSecretFile("--repo-password-file", f.passwordFile); err != nil {
			return err
		}
	}
	if f.webhookSecretFile != "" {
		secret, err := readSecretFile("--webhook-secret-file", f.webhookSecretFile)
		if err != nil {
			return err
		}
		cfg.WebhookSecret = []byte(secret)
	}
	return nil
}

// readSecretFile reads a secret kept in a file, without its line break.
func readSecretFile(flag, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", flag, path)
	}
	return s, nil
}
