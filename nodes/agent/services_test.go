package agent

import (
	"context"
	"fmt"
	"log/slog"
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
		RunServiceProxy(ctx, w, syncResult{tc.err}, slog.New(slog.DiscardHandler))
		cancel()
		if fmt.Sprint(w.asked) != fmt.Sprint(tc.want) {
			t.Errorf("sync error %v: queries after %v, want %v", tc.err, w.asked, tc.want)
		}
	}
}
