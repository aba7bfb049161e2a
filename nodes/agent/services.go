package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/retry"
	"github.com/berth/berth/nodes/proxy"
	"github.com/berth/berth/reconcile"
)

// ServiceSource is the API as the service proxy loop needs it.
type ServiceSource interface {
	Services(ctx context.Context, w *api.Watch) ([]reconcile.ServiceView, uint64, error)
}

// ServiceSyncer renders Services into nftables.
type ServiceSyncer interface {
	Sync(services []proxy.Service) error
}

// RunServiceProxy watches the Services and their ready endpoints and
// renders every change, as kube-proxy does, until ctx ends, for node (its
// endpoints are the local ones). A failed sync is retried at the next
// change or after a pause. seen, if set, is given every answer first (the
// node's DNS records and the pods' Service variables follow the same
// watch).
func RunServiceProxy(ctx context.Context, src ServiceSource, p ServiceSyncer, node string, seen func([]reconcile.ServiceView), log *slog.Logger) error {
	const pause = 2 * time.Second
	var index uint64
	for ctx.Err() == nil {
		views, idx, err := src.Services(ctx, &api.Watch{Index: index, Wait: 30 * time.Second})
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("watching services", "err", err)
				retry.Sleep(ctx, pause)
			}
			continue
		}
		if seen != nil {
			seen(views)
		}
		err = p.Sync(toProxy(views, node))
		switch {
		case errors.Is(err, proxy.ErrInvalid):
			// The rest is applied; rendering the same input again would
			// skip the same entries, so wait for the next change.
			log.Warn("services skipped by the proxy", "err", err)
		case err != nil:
			log.Error("rendering services into nftables", "err", err)
			retry.Sleep(ctx, pause)
			continue
		}
		index = idx
	}
	return ctx.Err()
}

func toProxy(views []reconcile.ServiceView, node string) []proxy.Service {
	out := make([]proxy.Service, 0, len(views))
	for _, v := range views {
		if v.ExternalName != "" {
			continue // DNS alone answers it
		}
		s := proxy.Service{Namespace: v.Namespace, Name: v.Name, ClusterIP: v.ClusterIP,
			LoadBalancer: v.Ingress, SourceRanges: v.LoadBalancerSourceRanges,
			Affinity:      time.Duration(v.AffinityTimeout) * time.Second,
			InternalLocal: v.InternalTrafficPolicy == "Local", ExternalLocal: v.ExternalTrafficPolicy == "Local"}
		for _, p := range v.Ports {
			sp := proxy.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port, NodePort: p.NodePort}
			for _, e := range p.Endpoints {
				sp.Endpoints = append(sp.Endpoints, proxy.Endpoint{IP: e.IP, Port: e.Port, Local: e.Node == node})
			}
			s.Ports = append(s.Ports, sp)
		}
		out = append(out, s)
	}
	return out
}
