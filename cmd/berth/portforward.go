package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/reconcile"
)

func newPortForwardCmd() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "port-forward [pod/]POD|svc/SERVICE [LOCAL:]REMOTE...",
		Short: "Forward local ports to a pod",
		Long: `Listen on 127.0.0.1:LOCAL and forward each connection to port REMOTE of
the pod, through a master and the pod's node, as kubectl port-forward does.
LOCAL defaults to REMOTE; an empty or 0 LOCAL (":REMOTE") picks a free port.
For svc/SERVICE, REMOTE is a port of the Service (number or name), and the
connections go to one ready pod behind it, at the port the Service targets.
Admin tokens only.`,
		Args: cobra.MinimumNArgs(2),
	}
	client := clientFlag(cmd)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the pod's or Service's namespace")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		forwards, err := parseForwards(args[1:])
		if err != nil {
			return &exitError{2, err}
		}
		pod, err := forwardTarget(ctx, c, namespace, args[0], forwards)
		if err != nil {
			return &exitError{1, err}
		}
		var lns []net.Listener
		defer func() {
			for _, ln := range lns {
				ln.Close()
			}
		}()
		for _, f := range forwards {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(f.local)))
			if err != nil {
				return &exitError{1, err}
			}
			lns = append(lns, ln)
			fmt.Fprintf(cmd.OutOrStdout(), "Forwarding from %s -> %d\n", ln.Addr(), f.remote)
			go serveForward(ctx, c, namespace, pod, f.remote, ln, cmd.ErrOrStderr())
		}
		<-ctx.Done()
		return nil
	}
	return cmd
}

type forward struct {
	local int
	// remote is a port number; for a Service, service is what was given
	// (a number or a port's name) and remote is resolved from it.
	remote  int
	service string
}

func parseForwards(args []string) ([]forward, error) {
	var out []forward
	for _, a := range args {
		local, remote, ok := strings.Cut(a, ":")
		if !ok {
			local, remote = a, a
		}
		f := forward{service: remote}
		if p, err := api.ParsePort(remote); err == nil {
			f.remote = p
		}
		switch {
		case local == "" || local == "0":
		case f.remote == 0 && !ok:
			return nil, fmt.Errorf("%q: a port by name needs a local port: LOCAL:%s", a, remote)
		default:
			p, err := api.ParsePort(local)
			if err != nil {
				return nil, fmt.Errorf("%q: local %w", a, err)
			}
			f.local = p
		}
		if remote == "" {
			return nil, fmt.Errorf("%q: no remote port", a)
		}
		out = append(out, f)
	}
	return out, nil
}

// forwardTarget names the pod the forwards go to, resolving a Service's
// ports to the pod's (they change in place).
func forwardTarget(ctx context.Context, c *api.Client, namespace, target string, forwards []forward) (string, error) {
	kind, name, ok := strings.Cut(target, "/")
	if !ok {
		kind, name = "pod", target
	}
	switch kind {
	case "pod", "pods", "po":
		for _, f := range forwards {
			if f.remote == 0 {
				return "", fmt.Errorf("port %q: a pod's port is a number", f.service)
			}
		}
		return name, nil
	case "svc", "service", "services":
	default:
		return "", fmt.Errorf("%q: want pod/NAME or svc/NAME", target)
	}
	svcs, _, err := c.Services(ctx, nil)
	if err != nil {
		return "", err
	}
	for _, s := range svcs {
		if s.Namespace != namespace || s.Name != name {
			continue
		}
		pod := ""
		for i, f := range forwards {
			port, err := servicePort(s.Ports, f.service)
			if err != nil {
				return "", fmt.Errorf("service %s/%s: %w", namespace, name, err)
			}
			// One pod for every port, as kubectl: the first ready one.
			forwards[i].remote = 0
			for _, e := range port.Endpoints {
				if pod == "" || e.Pod == pod {
					pod, forwards[i].remote = e.Pod, int(e.Port)
					break
				}
			}
			if forwards[i].remote == 0 {
				return "", fmt.Errorf("service %s/%s: no ready pod serves port %s", namespace, name, f.service)
			}
		}
		return pod, nil
	}
	return "", fmt.Errorf("no service %s/%s", namespace, name)
}

func servicePort(ports []reconcile.PortView, want string) (reconcile.PortView, error) {
	for _, p := range ports {
		if p.Name == want || strconv.Itoa(int(p.Port)) == want {
			if p.Protocol != "" && p.Protocol != "TCP" {
				return p, fmt.Errorf("port %s is %s; only TCP is forwarded", want, p.Protocol)
			}
			return p, nil
		}
	}
	return reconcile.PortView{}, fmt.Errorf("no port %s", want)
}

// serveForward forwards each connection ln accepts until ctx ends.
func serveForward(ctx context.Context, c *api.Client, namespace, pod string, port int, ln net.Listener, errs io.Writer) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintln(errs, "berth:", err)
			}
			return
		}
		go func() {
			remote, err := c.PortForward(ctx, namespace, pod, port)
			if err != nil {
				fmt.Fprintf(errs, "berth: forwarding a connection to %s/%s:%d: %v\n", namespace, pod, port, err)
				conn.Close()
				return
			}
			httpserve.Pipe(conn, remote)
		}()
	}
}
