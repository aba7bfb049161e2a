package boot

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/netboot"

	"github.com/berth/berth/appliance/retry"
)

// upLoopback brings up lo; the kernel gives it 127.0.0.1 itself.
func upLoopback() error {
	_, err := netboot.IfUp("lo", 5*time.Second)
	return err
}

// ethernets lists the non-loopback interfaces, sorted by name, waiting
// up to wait for the first to appear (drivers probe asynchronously).
func ethernets(wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		ifs, _ := net.Interfaces()
		var out []string
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback == 0 && len(i.HardwareAddr) == 6 {
				out = append(out, i.Name)
			}
		}
		sort.Strings(out)
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// configureStatic sets a static address on the first interface.
func configureStatic(s *Static, log *slog.Logger) (string, error) {
	ifs := ethernets(10 * time.Second)
	if len(ifs) == 0 {
		return "", fmt.Errorf("no network interface")
	}
	if _, err := netboot.IfUp(ifs[0], 10*time.Second); err != nil {
		return "", err
	}
	nc := &netboot.NetConf{Addresses: []netboot.AddrConf{{IPNet: net.IPNet{IP: s.Addr.Addr().AsSlice(), Mask: net.CIDRMask(s.Addr.Bits(), 32)}}}}
	if s.Gateway.IsValid() {
		nc.Routers = []net.IP{s.Gateway.AsSlice()}
	}
	for _, d := range s.DNS {
		nc.DNSServers = append(nc.DNSServers, d.AsSlice())
	}
	if err := netboot.ConfigureInterface(ifs[0], nc); err != nil {
		return "", err
	}
	log.Info("static address", "interface", ifs[0], "addr", s.Addr)
	return ifs[0], nil
}

// runDHCP gets a lease on the first interface that answers, configures
// it, and renews it at half its lifetime for as long as ctx lives. It
// retries with back-off when no server answers; ready is closed once an
// address is set.
func runDHCP(ctx context.Context, log *slog.Logger, ready chan<- struct{}) {
	pauses := retry.Backoff{Base: 2 * time.Second, Max: time.Minute}
	for failures := 1; ctx.Err() == nil; failures++ {
		for _, ifname := range ethernets(10 * time.Second) {
			lease, client, err := dhcpOnce(ctx, ifname)
			if err != nil {
				log.Warn("DHCP", "interface", ifname, "err", err)
				continue
			}
			if ready != nil {
				close(ready)
				ready = nil
			}
			renew(ctx, log, ifname, client, lease)
			client.Close()
		}
		retry.Sleep(ctx, pauses.Delay(failures))
	}
}

func dhcpOnce(ctx context.Context, ifname string) (*nclient4.Lease, *nclient4.Client, error) {
	if _, err := netboot.IfUp(ifname, 10*time.Second); err != nil {
		return nil, nil, err
	}
	client, err := nclient4.New(ifname, nclient4.WithTimeout(4*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lease, err := client.Request(rctx)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	if err := apply(ifname, lease); err != nil {
		client.Close()
		return nil, nil, err
	}
	return lease, client, nil
}

func apply(ifname string, lease *nclient4.Lease) error {
	nc, err := netboot.GetNetConfFromPacketv4(lease.ACK)
	if err != nil {
		return err
	}
	if err := netboot.ConfigureInterface(ifname, nc); err != nil && !strings.Contains(err.Error(), "exists") {
		return err
	}
	return nil
}

// renew keeps the lease until a renewal fails past its expiry.
func renew(ctx context.Context, log *slog.Logger, ifname string, client *nclient4.Client, lease *nclient4.Lease) {
	for {
		lt := lease.ACK.IPAddressLeaseTime(time.Hour)
		expires := lease.CreationTime.Add(lt)
		log.Info("DHCP lease", "interface", ifname, "addr", lease.ACK.YourIPAddr, "router", lease.ACK.Router(), "lease", lt)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(max(time.Until(expires)/2, 10*time.Second)):
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			next, err := client.Renew(rctx, lease)
			cancel()
			if err == nil {
				lease = next
				if err := apply(ifname, lease); err != nil {
					log.Error("DHCP renewal", "err", err)
				}
				break
			}
			log.Warn("DHCP renewal", "interface", ifname, "err", err)
			if time.Now().After(expires) {
				return
			}
		}
	}
}

// addresses lists this machine's non-loopback IPv4 addresses.
func addresses() []string {
	addrs, _ := net.InterfaceAddrs()
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			out = append(out, n.IP.String())
		}
	}
	return out
}
