package agent

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/nodes/proxy"
	"github.com/berth/berth/reconcile"
)

// watches answers blocking queries from a list of indexes, and records
// the index each query waited after.
type watches struct {
	indexes []uint64
	asked   []uint64
	done    context.CancelFunc
}

func (w *watches) Services(ctx context.Context, q *api.Watch) ([]reconcile.ServiceView, uint64, error) {
	w.asked = append(w.asked, q.Index)
	if len(w.asked) > len(w.indexes) {
		w.done()
		return nil, 0, ctx.Err()
	}
	return []reconcile.ServiceView{{Namespace: "default", Name: "web"}}, w.indexes[len(w.asked)-1], nil
}

type syncResult struct{ err error }

func (s syncResult) Sync([]proxy.Service) error { return s.err }

// A Service the proxy cannot render must not make it render everything
// again every 2 s: the rest was applied, so the loop waits for the next
// change. A failure of the whole sync is retried at the same index.
func TestServiceProxyAdvancesPastInvalid(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want []uint64
	}{
		{fmt.Errorf("%w: port 0", proxy.ErrInvalid), []uint64{0, 5, 9}},
		{nil, []uint64{0, 5, 9}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		w := &watches{indexes: []uint64{5, 9}, done: cancel}
		RunServiceProxy(ctx, w, syncResult{tc.err}, "n1", nil, slog.New(slog.DiscardHandler))
		cancel()
		if fmt.Sprint(w.asked) != fmt.Sprint(tc.want) {
			t.Errorf("sync error %v: queries after %v, want %v", tc.err, w.asked, tc.want)
		}
	}
}

// The proxy gets what each view field asks for: this node's endpoints
// marked local, the LoadBalancer addresses and source ranges, the
// affinity timeout, the Local policies.
func TestToProxy(t *testing.T) {
	got := toProxy([]reconcile.ServiceView{{Namespace: "ns", Name: "lb", ClusterIP: "10.96.0.5",
		Ingress: []string{"10.0.0.2"}, LoadBalancerSourceRanges: []string{"10.0.0.0/8"}, AffinityTimeout: 60,
		InternalTrafficPolicy: "Cluster", ExternalTrafficPolicy: "Local",
		Ports: []reconcile.PortView{{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30080, Endpoints: []reconcile.Endpoint{
			{IP: "10.244.0.5", Port: 8080, Pod: "a", Node: "n1"}, {IP: "10.244.1.5", Port: 8080, Pod: "b", Node: "n2"}}}}}}, "n1")
	want := []proxy.Service{{Namespace: "ns", Name: "lb", ClusterIP: "10.96.0.5", LoadBalancer: []string{"10.0.0.2"},
		SourceRanges: []string{"10.0.0.0/8"}, Affinity: time.Minute, ExternalLocal: true,
		Ports: []proxy.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30080, Endpoints: []proxy.Endpoint{
			{IP: "10.244.0.5", Port: 8080, Local: true}, {IP: "10.244.1.5", Port: 8080}}}}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("toProxy:\n got %+v\nwant %+v", got, want)
	}
}
