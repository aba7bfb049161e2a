package nodes

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultAgentPort is the agent API's port, the kubelet's.
const DefaultAgentPort = "10250"

// agentAddrs decides where the agent's API listens: by default on the
// address it advertises and nowhere else (the masters are its only
// callers), which is Advertise or else this node's address toward the
// masters, on DefaultAgentPort. Listen, when given, is taken as it is
// (0.0.0.0:PORT for every interface); advertise is then left empty when
// not given, for the listener's own address to fill in.
func agentAddrs(cfg Config) (listen, advertise string, err error) {
	if advertise = cfg.Advertise; advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err != nil {
			return "", "", fmt.Errorf("the agent's advertised address %q: want HOST:PORT", advertise)
		}
	}
	if cfg.Listen != "" {
		return cfg.Listen, advertise, nil
	}
	if advertise == "" {
		ip, err := nodeIP(cfg.Server)
		if err != nil {
			return "", "", err
		}
		advertise = net.JoinHostPort(ip.String(), DefaultAgentPort)
	}
	return advertise, advertise, nil
}

// listenAgent opens the agent API's listener (see agentAddrs) and returns
// the address to advertise: as given, or the listener's, with this node's
// address toward the masters in place of an unspecified host.
func listenAgent(cfg Config) (net.Listener, string, error) {
	listen, advertise, err := agentAddrs(cfg)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		if cfg.Listen == "" {
			return nil, "", fmt.Errorf("agent API: %w (it listens on the address it advertises unless told where to listen)", err)
		}
		return nil, "", fmt.Errorf("agent API: %w", err)
	}
	if advertise == "" {
		addr := ln.Addr().(*net.TCPAddr)
		ip := addr.IP
		if ip.IsUnspecified() {
			if ip, err = nodeIP(cfg.Server); err != nil {
				ln.Close()
				return nil, "", err
			}
		}
		advertise = net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port))
	}
	return ln, advertise, nil
}

// nodeIP is this node's address toward the masters: the source address
// the kernel picks for the route to the first of them. Connecting a UDP
// socket sends nothing, so the masters need not be up yet.
func nodeIP(server string) (net.IP, error) {
	first, _, _ := strings.Cut(server, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("the masters' URL %q names no host to find this node's address by: give the agent's advertised address", first)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	c, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("finding this node's address toward the masters: %w; give the agent's advertised address", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP, nil
}
