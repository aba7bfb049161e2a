package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/examples"
	"github.com/berth/berth/gitops"
	"github.com/berth/berth/nodes"
	"github.com/berth/berth/nodes/agent"
	"github.com/berth/berth/reconcile"
)

// nodeFlags are the worker's flags, shared by `berth up` and `berth agent`.
type nodeFlags struct {
	name, containerd, listen, advertise string
	clusterDomain, resolvConf           string
	insecureRegistries                  []string
	labels                              map[string]string
	heartbeat                           time.Duration
}

func (f *nodeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.name, "node-name", "", "node name (default: the host name)")
	cmd.Flags().StringVar(&f.containerd, "containerd", "", "containerd socket (default: start a private containerd under the data dir)")
	cmd.Flags().StringVar(&f.advertise, "agent-advertise", "", "HOST:PORT the masters reach the agent's API (logs) at (default: this node's address toward the masters, port 10250; or --agent-listen's)")
	cmd.Flags().StringVar(&f.listen, "agent-listen", "", "address the agent's API listens on (default: the advertised one only; 0.0.0.0:PORT for every interface)")
	cmd.Flags().StringSliceVar(&f.insecureRegistries, "insecure-registry", nil, "registry (host[:port]) to pull from over plain HTTP; repeatable")
	cmd.Flags().StringToStringVar(&f.labels, "node-label", nil, "extra node label key=value; repeatable")
	cmd.Flags().StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "DNS domain of the cluster's names (<service>.<namespace>.svc.DOMAIN), as the kubelet's")
	cmd.Flags().StringVar(&f.resolvConf, "resolv-conf", "/etc/resolv.conf", "the host's resolver configuration: the cluster DNS forwards other names to its nameservers, as the kubelet's")
	cmd.Flags().DurationVar(&f.heartbeat, "heartbeat-interval", agent.DefaultHeartbeat, "how often the agent tells the masters the node is alive (keep it a quarter of the masters' --node-grace or less)")
}

func (f *nodeFlags) config(dataDir, server, token, caHash string, log *slog.Logger) nodes.Config {
	return nodes.Config{Name: f.name, DataDir: dataDir, Server: server, Token: token, CAHash: caHash, Containerd: f.containerd,
		Listen: f.listen, Advertise: f.advertise, PlainHTTPRegistries: f.insecureRegistries, Labels: f.labels, ClusterDomain: f.clusterDomain, ResolvConf: f.resolvConf, Heartbeat: f.heartbeat, Logger: log}
}

func newUpCmd() *cobra.Command {
	var (
		dataDir, listen, raftAddr string
		repo                      repoFlags
		network                   networkFlags
		node                      nodeFlags
		timeouts                  reconcile.NodeTimeouts
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a whole cluster on this machine: one master, an agent, the service proxy, containerd",
		Long: `up runs a one-member master, a local agent, the service proxy and (unless
--containerd names a socket) a private containerd, all under --data.

With no --repo it copies the hello example into a new git repository under
the data dir and follows it: edit, commit, and watch the cluster follow.
It writes an admin client config to DATA/admin.conf.`,
		Args: cobra.NoArgs,
	}
	repo.add(cmd, "config repository: path, file:// or http(s):// URL (default: a new repo with the hello example)")
	network.add(cmd)
	cmd.Flags().StringVar(&dataDir, "data", "/var/lib/berth", "data directory")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7443", "API address")
	cmd.Flags().StringVar(&raftAddr, "raft-addr", "127.0.0.1:7444", "Raft transport address")
	node.add(cmd)
	addNodeTimeoutFlags(cmd, &timeouts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		dir, err := filepath.Abs(dataDir)
		if err != nil {
			return err
		}
		cfg := appliance.Config{DataDir: filepath.Join(dir, "master"), Listen: listen, RaftListen: raftAddr, Bootstrap: true, Logger: log,
			NodeTimeouts: timeouts, Version: version}
		if err := repo.apply(&cfg); err != nil {
			return &exitError{2, err}
		}
		if err := network.apply(&cfg); err != nil {
			return err
		}
		if cfg.Repo == "" {
			if cfg.Repo, err = exampleRepo(dir); err != nil {
				return &exitError{1, err}
			}
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return &exitError{1, err}
		}
		if err := os.WriteFile(filepath.Join(dir, "berth.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return &exitError{1, err}
		}
		masterDir := cfg.DataDir
		m, err := appliance.Start(ctx, cfg)
		if err != nil {
			return &exitError{1, fmt.Errorf("master: %w", err)}
		}
		// The local agent joins like any other, with the agent join token.
		joinToken, err := os.ReadFile(filepath.Join(masterDir, "join-agent.token"))
		if err != nil {
			m.Close()
			return &exitError{1, err}
		}
		n, err := nodes.Start(ctx, node.config(filepath.Join(dir, "node"), m.URL(), strings.TrimSpace(string(joinToken)), m.CAHash(), log))
		if err != nil {
			m.Close()
			return &exitError{1, fmt.Errorf("node: %w", err)}
		}
		conf := filepath.Join(dir, "admin.conf")
		b, err := os.ReadFile(filepath.Join(masterDir, "admin.conf"))
		if err == nil {
			err = os.WriteFile(conf, b, 0o600)
		}
		if err != nil {
			n.Close()
			m.Close()
			return &exitError{1, err}
		}
		fmt.Fprintf(cmd.OutOrStdout(), "berth is up\n  API:           %s\n  dashboard:     %s (sign in with the token in %s)\n  CA:            %s\n  config repo:   %s\n  admin config:  %s\n  agent token:   %s\n  try:           berth get pods --config %s\n",
			m.URL(), m.DashboardURL(), conf, m.CAHash(), cfg.Repo, conf, filepath.Join(masterDir, "join-agent.token"), conf)
		select {
		case <-ctx.Done():
		case <-m.Store.Halted():
			n.Close()
			m.Close()
			return &exitError{1, fmt.Errorf("master stopped: %w", m.Store.HaltError())}
		}
		fmt.Fprintln(cmd.OutOrStdout(), "berth: stopping (pods keep running; the next `berth up` adopts them, `berth down` stops them)")
		err = errors.Join(n.Close(), m.Close())
		os.Remove(filepath.Join(dir, "berth.pid"))
		return err
	}
	return cmd
}

// exampleRepo returns DATA/config, creating it from the hello example on
// first use.
func exampleRepo(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "config")
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	hello, err := fs.Sub(examples.FS, "hello")
	if err != nil {
		return "", err
	}
	if _, err := gitops.InitRepo(dir, hello, "The hello example, from berth up"); err != nil {
		return "", fmt.Errorf("creating the example repository: %w", err)
	}
	fmt.Fprintf(os.Stderr, "berth: created a config repository with the hello example in %s\n", dir)
	return dir, nil
}

func newDownCmd() *cobra.Command {
	var dataDir, containerd string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a cluster started with berth up, and every pod it runs",
		Long: `down stops the berth up process of --data (SIGTERM), then stops every pod
its node runs, removes the service proxy's nftables table and stops the
private containerd. The data directory stays: the next berth up starts from
the same state and the pods come back.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&dataDir, "data", "/var/lib/berth", "data directory of berth up")
	cmd.Flags().StringVar(&containerd, "containerd", "", "containerd socket, if berth up was given one")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := stopProcess(filepath.Join(dataDir, "berth.pid"), time.Minute); err != nil {
			return &exitError{1, err}
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if err := nodes.Reset(cmd.Context(), nodes.Config{DataDir: filepath.Join(dataDir, "node"), Containerd: containerd, Logger: log}); err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), "berth is down")
		return nil
	}
	return cmd
}

// stopProcess sends SIGTERM to the process the pid file names, if it runs,
// and waits for it to exit.
func stopProcess(pidFile string, wait time.Duration) error {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %w", pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		os.Remove(pidFile)
		return nil // not running
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			os.Remove(pidFile)
			return nil
		}
	}
	return fmt.Errorf("berth (pid %d) did not stop within %s", pid, wait)
}

func newAgentCmd() *cobra.Command {
	var (
		server, token, caHash, dataDir string
		node                           nodeFlags
	)
	cmd := &cobra.Command{
		Use:   "agent --server URL[,URL...] --token TOKEN --ca-hash sha256:...",
		Short: "Run a worker node: the agent, the service proxy and (by default) a private containerd",
		Args:  cobra.NoArgs,
	}
	cmd.Flags().StringVar(&server, "server", "", "the masters' API URLs, comma-separated")
	cmd.Flags().StringVar(&token, "token", "", "agent join token (used once, on the first start)")
	cmd.Flags().StringVar(&caHash, "ca-hash", "", "fingerprint of the cluster CA to trust when joining (sha256:...)")
	cmd.Flags().StringVar(&dataDir, "data", "/var/lib/berth/node", "data directory")
	node.add(cmd)
	cmd.MarkFlagRequired("server")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		n, err := nodes.Start(ctx, node.config(dataDir, server, token, caHash, log))
		if err != nil {
			return &exitError{1, err}
		}
		<-ctx.Done()
		return n.Close()
	}
	return cmd
}

func newLogsCmd() *cobra.Command {
	var (
		namespace, container string
		follow               bool
	)
	cmd := &cobra.Command{
		Use:   "logs [NAMESPACE/]POD",
		Short: "Print a container's log",
		Args:  cobra.ExactArgs(1),
	}
	client := clientFlag(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the pod's namespace")
	cmd.Flags().StringVarP(&container, "container", "c", "", "container (default: the pod's only one)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		pod := args[0]
		if ns, name, ok := strings.Cut(pod, "/"); ok {
			namespace, pod = ns, name
		}
		if err := c.Logs(ctx, namespace, pod, container, follow, cmd.OutOrStdout()); err != nil {
			return &exitError{1, err}
		}
		return nil
	}
	return cmd
}
