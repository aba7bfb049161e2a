package apiserver

import (
	"net/http"
	"regexp"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
)

// kindRule: an object kind as the specs spell it (Pod, Deployment...).
var kindRule = nameRule{"kind", regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,62}$`).MatchString, "must be a kind such as Pod or Deployment"}

// events lists the event log, oldest first, filtered by ?namespace=, ?kind=
// and ?name= (the involved object's). Events carry no secret values (what
// records them never puts one in a message), so read-only tokens read them.
func (s *Server) events(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	q := r.URL.Query()
	for _, f := range []struct {
		param string
		rule  nameRule
	}{{"namespace", namespaceName}, {"kind", kindRule}, {"name", podName}} {
		if v := q.Get(f.param); v != "" {
			if err := f.rule.check(v); err != nil {
				return nil, err
			}
		}
	}
	out := []state.Event{}
	for _, e := range st.Events {
		if match(q.Get("namespace"), e.Object.Namespace) && match(q.Get("kind"), e.Object.Kind) && match(q.Get("name"), e.Object.Name) {
			out = append(out, e)
		}
	}
	return out, nil
}

func match(filter, v string) bool { return filter == "" || filter == v }

// recordEvents takes an agent's batch of events about its node and the
// pods bound to it; an event about anything else is refused, so that no
// node speaks for another. Events about pods deleted since are dropped:
// nothing says any more where they ran.
func (s *Server) recordEvents(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	node := r.PathValue("name")
	if _, ok := st.Nodes[node]; !ok {
		return nil, errorf(http.StatusNotFound, "no node %q; register it first", node)
	}
	var report api.EventReport
	if err := decodeBody(r, &report); err != nil {
		return nil, err
	}
	if len(report.Events) > state.MaxEventBatch {
		return nil, errorf(http.StatusRequestEntityTooLarge, "%d events: at most %d in one report", len(report.Events), state.MaxEventBatch)
	}
	var kept []state.Event
	for _, e := range report.Events {
		e.Source = state.EventSource{Component: api.AgentComponent, Host: node}
		if err := e.Check(); err != nil {
			return nil, errorf(http.StatusBadRequest, "%v", err)
		}
		switch e.Object.Kind {
		case "Node":
			if e.Object.Name != node || e.Object.Namespace != "" {
				return nil, errorf(http.StatusForbidden, "node %s may not report events about %s", node, e.Object)
			}
		case "Pod":
			p := st.Pods.Get(state.PodKey(e.Object.Namespace, e.Object.Name))
			if p == nil {
				continue
			}
			if p.NodeName != node {
				return nil, errorf(http.StatusForbidden, "node %s may not report events about %s, which is not bound to it", node, e.Object)
			}
		default:
			return nil, errorf(http.StatusBadRequest, "an agent reports events about its node and its pods, not a %s", e.Object.Kind)
		}
		kept = append(kept, e)
	}
	out := api.EventReportResult{Recorded: len(kept), Dropped: len(report.Events) - len(kept)}
	if len(kept) == 0 {
		return out, nil
	}
	// Only what is written to the log counts against the node.
	if !s.eventReports.allow(node) {
		return nil, errorf(http.StatusTooManyRequests, "node %s reports events more often than every %s: send them in batches", node, eventReportEvery)
	}
	return out, s.propose(r, state.RecordEvents(kept...))
}

// An agent reports its events every 5 s (agent.DefaultEventFlush); each
// report is a Raft entry, so a node that sends more often, a broken or
// hostile one, is refused with a 429 beyond a few at once.
const (
	eventReportEvery = time.Second
	eventReportBurst = 5
)

// reportLimits are each node's allowance of event reports, on this master.
type reportLimits struct {
	mu     sync.Mutex
	byNode map[string]*rate.Limiter
}

func (l *reportLimits) allow(node string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byNode == nil {
		l.byNode = map[string]*rate.Limiter{}
	}
	lim := l.byNode[node]
	if lim == nil {
		// One per registered node: the handler checks the node exists.
		lim = rate.NewLimiter(rate.Every(eventReportEvery), eventReportBurst)
		l.byNode[node] = lim
	}
	return lim.Allow()
}
