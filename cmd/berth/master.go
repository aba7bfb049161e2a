package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/pki"
)

func newMasterCmd() *cobra.Command {
	var (
		cfg       appliance.Config
		bootstrap bool
		repo      repoFlags
	)
	cmd := &cobra.Command{
		Use:   "master --data DIR (--bootstrap | --join URL --token TOKEN --ca-hash sha256:...)",
		Short: "Run a master: Raft member, API, Git sync and (when leading) the controllers",
		Long: `master runs one master of a cluster. The first one bootstraps: it creates the
cluster CA, an admin token (in DATA/admin.conf) and the join tokens for masters
(DATA/join-master.token) and agents (DATA/join-agent.token), and prints the
CA's fingerprint. The others join through any member with the master join
token, trusting only a CA with that fingerprint (as kubeadm's
--discovery-token-ca-cert-hash). A data dir that holds state restarts as it
was; the join flags are then ignored.`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "this master's name, unique in the cluster (default: the host name)")
	f.StringVar(&cfg.DataDir, "data", "/var/lib/berth/master", "data directory")
	f.StringVar(&cfg.Listen, "listen", ":7443", "API address")
	f.StringVar(&cfg.Advertise, "advertise", "", "API address others reach this master at (default: from --listen)")
	f.StringVar(&cfg.RaftListen, "raft-listen", ":7444", "Raft address")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "Raft address other masters dial (default: --advertise's host, --raft-listen's port)")
	f.BoolVar(&bootstrap, "bootstrap", false, "create a new cluster")
	f.StringVar(&cfg.Join, "join", "", "join the cluster of this member's API URL (comma-separated for several)")
	f.StringVar(&cfg.Token, "token", "", "master join token (with --join), or the admin token to create (with --bootstrap)")
	f.StringVar(&cfg.CAHash, "ca-hash", "", "fingerprint of the cluster CA to trust when joining (sha256:...)")
	repo.add(cmd, "config repository: path, file:// or http(s):// URL")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if bootstrap && cfg.Join != "" {
			return &exitError{2, fmt.Errorf("--bootstrap and --join exclude each other")}
		}
		if err := repo.apply(&cfg); err != nil {
			return &exitError{2, err}
		}
		cfg.Bootstrap = bootstrap
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return &exitError{1, err}
		}
		pidFile := filepath.Join(cfg.DataDir, "berth.pid")
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return &exitError{1, err}
		}
		defer os.Remove(pidFile)
		m, err := appliance.Start(ctx, cfg)
		if err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "master %s serving %s (CA %s)\n", m.Name(), m.URL(), m.CAHash())
		<-ctx.Done()
		return m.Close()
	}
	cmd.AddCommand(newMasterLeaveCmd(), newSnapshotCmd())
	return cmd
}

// newMasterLeaveCmd removes a master from the cluster with its own
// certificate, then stops it.
func newMasterLeaveCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "leave --data DIR",
		Short: "Remove this master from the cluster, then stop it",
		Args:  cobra.NoArgs,
	}
	cmd.Flags().StringVar(&dataDir, "data", "/var/lib/berth/master", "the master's data directory")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		dir := filepath.Join(dataDir, "tls")
		read := func(name string) []byte {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			return b
		}
		caPEM, certPEM, keyPEM := read("ca.crt"), read("master.crt"), read("master.key")
		tc, err := pki.ClientTLS(caPEM, certPEM, keyPEM, pki.OrgMasters)
		if err != nil {
			return &exitError{1, fmt.Errorf("%s holds no master identity: %w", dataDir, err)}
		}
		block, _ := pem.Decode(certPEM)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return &exitError{1, err}
		}
		url, err := os.ReadFile(filepath.Join(dataDir, "api-url"))
		if err != nil {
			return &exitError{1, err}
		}
		c := api.NewClient(strings.TrimSpace(string(url)), "", api.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: time.Minute}))
		if err := c.RemoveMember(cmd.Context(), cert.Subject.CommonName); err != nil {
			return &exitError{1, err}
		}
		if err := stopProcess(filepath.Join(dataDir, "berth.pid"), time.Minute); err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "master %s left the cluster\n", cert.Subject.CommonName)
		return nil
	}
	return cmd
}

func newSnapshotCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot save|restore FILE", Short: "Save the cluster state to a file, or restore it from one"}
	save := &cobra.Command{Use: "save FILE", Short: "Save a snapshot of the whole cluster state", Args: cobra.ExactArgs(1)}
	saveClient := clientFlag(save)
	save.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := saveClient()
		if err != nil {
			return err
		}
		tmp := args[0] + ".partial"
		f, err := os.Create(tmp)
		if err != nil {
			return &exitError{1, err}
		}
		err = c.SaveSnapshot(cmd.Context(), f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, args[0])
		}
		if err != nil {
			os.Remove(tmp)
			return &exitError{1, err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), "saved", args[0])
		return nil
	}
	restore := &cobra.Command{Use: "restore FILE", Short: "Replace the whole cluster state with a saved snapshot", Args: cobra.ExactArgs(1)}
	restoreClient := clientFlag(restore)
	restore.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := restoreClient()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(args[0])
		if err != nil {
			return &exitError{1, err}
		}
		if err := c.RestoreSnapshot(cmd.Context(), b); err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), "restored", args[0])
		return nil
	}
	cmd.AddCommand(save, restore)
	return cmd
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token create|list|revoke", Short: "Manage the API's bearer tokens"}
	var (
		role, ttl, desc string
	)
	create := &cobra.Command{Use: "create --role admin|read-only|master-join|agent-join", Short: "Create a token; its secret is shown once", Args: cobra.NoArgs}
	create.Flags().StringVar(&role, "role", "read-only", "admin, read-only, master-join or agent-join")
	create.Flags().StringVar(&ttl, "ttl", "", "how long it is valid, e.g. 24h (default: until revoked)")
	create.Flags().StringVar(&desc, "description", "", "what it is for")
	createClient := clientFlag(create)
	create.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := createClient()
		if err != nil {
			return err
		}
		t, err := c.CreateToken(cmd.Context(), api.TokenRequest{Role: auth.Role(role), TTL: ttl, Description: desc})
		if err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), t.Secret)
		return nil
	}
	list := &cobra.Command{Use: "list", Short: "List tokens (never their secrets)", Args: cobra.NoArgs}
	listClient := clientFlag(list)
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := listClient()
		if err != nil {
			return err
		}
		ts, err := c.Tokens(cmd.Context())
		if err != nil {
			return &exitError{1, err}
		}
		w := newTable(cmd.OutOrStdout())
		w.row("ID", "ROLE", "CREATED", "EXPIRES", "REVOKED", "DESCRIPTION")
		for _, t := range ts {
			exp := "never"
			if !t.Expires.IsZero() {
				exp = t.Expires.UTC().Format(time.RFC3339)
			}
			w.row(t.ID, t.Role, t.Created.UTC().Format(time.RFC3339), exp, t.Revoked, t.Description)
		}
		return w.flush()
	}
	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke a token at once", Args: cobra.ExactArgs(1)}
	revokeClient := clientFlag(revoke)
	revoke.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := revokeClient()
		if err != nil {
			return err
		}
		if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), "revoked", args[0])
		return nil
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
