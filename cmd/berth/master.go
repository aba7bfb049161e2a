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
		network   networkFlags
	)
	cmd := &cobra.Command{
		Use:   "master --data DIR (--bootstrap | --join URL --token TOKEN --ca-hash sha256:...)",
		Short: "Run a master: Raft member, API, Git sync and (when leading) the controllers",
		Long: `master runs one master of a cluster. The first one bootstraps: it creates the
cluster CA, an admin token (in DATA/admin.conf) and the join tokens for masters
(DATA/join-master.token, good for one join) and agents (DATA/join-agent.token),
both valid for 24 hours, and prints the CA's fingerprint; later joins take a
token from 'berth token create --role master-join' (or agent-join). The others
join through any member with a master join token, trusting only a CA with that
fingerprint (as kubeadm's --discovery-token-ca-cert-hash). A data dir that holds state restarts as it
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
	network.add(cmd)
	addNodeTimeoutFlags(cmd, &cfg.NodeTimeouts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := network.apply(&cfg); err != nil {
			return err
		}
		if bootstrap && cfg.Join != "" {
			return &exitError{2, fmt.Errorf("--bootstrap and --join exclude each other")}
		}
		if err := repo.apply(&cfg); err != nil {
			return &exitError{2, err}
		}
		cfg.Bootstrap = bootstrap
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		cfg.Version = version
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
		fmt.Fprintf(cmd.OutOrStdout(), "master %s serving %s (CA %s), dashboard %s\n", m.Name(), m.URL(), m.CAHash(), m.DashboardURL())
		select {
		case <-ctx.Done():
		case <-m.Store.Halted():
			m.Close()
			return &exitError{1, fmt.Errorf("stopped: %w", m.Store.HaltError())}
		}
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
		role, ttl, desc, writeConfig string
		uses                         int
		force                        bool
	)
	create := &cobra.Command{
		Use:   "create --role admin|read-only|master-join|agent-join [--ttl 24h] [--uses N] [--write-config FILE [--force]]",
		Short: "Create a token; its secret is shown once",
		Long: `create makes a token and prints its secret, which is shown this once.
Join tokens expire after 24 hours unless --ttl says otherwise (as kubeadm's
bootstrap tokens); a master-join token is good for one join, an agent-join
token for any number unless --uses limits it. Admin and read-only tokens
last until revoked unless --ttl is given. --ttl 0 never expires.`,
		Args: cobra.NoArgs,
	}
	create.Flags().StringVar(&role, "role", "read-only", "admin, read-only, master-join or agent-join")
	create.Flags().StringVar(&ttl, "ttl", "", "how long it is valid, e.g. 1h, or 0 for until revoked (default: 24h for join tokens, until revoked for the others)")
	create.Flags().IntVar(&uses, "uses", 0, "how many joins a join token allows, 0 for any number (default: 1 for master-join, any number for agent-join)")
	create.Flags().StringVar(&desc, "description", "", "what it is for")
	create.Flags().StringVar(&writeConfig, "write-config", "", "write a client config for the new token to this file (mode 0600), with this config's servers and CA, instead of printing the secret")
	create.Flags().BoolVar(&force, "force", false, "let --write-config replace an existing file")
	createClient := clientFlag(create)
	create.RunE = func(cmd *cobra.Command, args []string) error {
		var from *clientConfig
		if force && writeConfig == "" {
			return &exitError{2, fmt.Errorf("--force is for --write-config")}
		}
		if writeConfig != "" {
			if err := checkConfigTarget(writeConfig, auth.Role(role), force); err != nil {
				return &exitError{2, err}
			}
			flag, _ := cmd.Flags().GetString("config")
			var err error
			if from, err = loadClientConfig(configPath(flag)); err != nil {
				return &exitError{2, err}
			}
		}
		c, err := createClient()
		if err != nil {
			return err
		}
		req := api.TokenRequest{Role: auth.Role(role), TTL: ttl, Description: desc}
		if cmd.Flags().Changed("uses") {
			req.Uses = &uses
		}
		t, err := c.CreateToken(cmd.Context(), req)
		if err != nil {
			return &exitError{1, err}
		}
		if writeConfig == "" {
			fmt.Fprintln(cmd.OutOrStdout(), t.Secret)
			return nil
		}
		if err := writeClientConfig(writeConfig, from, t.Secret, force); err != nil {
			// The token exists: say which, so it can be revoked.
			return &exitError{1, fmt.Errorf("token %s created, but writing %s: %w (revoke it with berth token revoke %s)", t.Token.ID, writeConfig, err, t.Token.ID)}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "token %s: client config written to %s\n", t.Token.ID, writeConfig)
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
		w.row("ID", "ROLE", "CREATED", "EXPIRES", "USED", "LEFT", "REVOKED", "DESCRIPTION")
		now := time.Now()
		for _, t := range ts {
			used, left := tokenUses(t)
			w.row(t.ID, t.Role, t.Created.UTC().Format(time.RFC3339), tokenExpiry(t, now), used, left, t.Revoked, t.Description)
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

// tokenExpiry is when t expires, for token list.
func tokenExpiry(t auth.Token, now time.Time) string {
	switch {
	case t.Expires.IsZero():
		return "never"
	case !now.Before(t.Expires):
		return t.Expires.UTC().Format(time.RFC3339) + " (expired)"
	}
	return t.Expires.UTC().Format(time.RFC3339)
}

// tokenUses is how many joins t made and has left, for token list; people's
// tokens are not spent by use.
func tokenUses(t auth.Token) (used, left string) {
	switch {
	case !t.Role.Joins():
		return "-", "-"
	case t.Uses == 0:
		return strconv.Itoa(t.Used), "any"
	}
	return strconv.Itoa(t.Used), strconv.Itoa(max(t.Uses-t.Used, 0))
}
