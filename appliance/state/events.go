package state

import (
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/berth/berth/schemas/names"
)

// Event types, as Kubernetes' core/v1 Event.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// Bounds of the event log (docs/events.md says why these numbers): the log
// lives in the replicated state, so it must stay small in every snapshot.
const (
	// MaxEvents is how many events the state keeps overall, about 0.5 MB.
	MaxEvents = 1000
	// MaxEventsPerObject is how many one object keeps: a pod's whole life
	// (scheduled, pulled, created, started, probes, back-off, killed) in
	// one describe, and one crash-looping pod cannot push out the rest.
	MaxEventsPerObject = 30
	// MaxEventMessage bounds a message, in bytes.
	MaxEventMessage = 1024
	// MaxEventBatch bounds one CmdRecordEvents.
	MaxEventBatch = 200
	// MaxEventCount is where a count stops growing.
	MaxEventCount = 1 << 30
)

// eventWord is a reason, a kind or a source: one word that prints in a
// column.
var eventWord = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:-]{0,127}$`)

// ObjectRef names the object an event is about (its involvedObject).
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// EventSource is who recorded an event: a controller on the leader
// (scheduler, deployment-controller...) or an agent (kubelet-like, Host set).
type EventSource struct {
	Component string `json:"component"`
	Host      string `json:"host,omitempty"`
}

// Event is one recorded occurrence, or several aggregated: the same
// object, type, reason, message and source seen Count times between
// FirstTimestamp and LastTimestamp.
type Event struct {
	Type           string      `json:"type"`
	Reason         string      `json:"reason"`
	Message        string      `json:"message"`
	Object         ObjectRef   `json:"involvedObject"`
	Source         EventSource `json:"source"`
	Count          int         `json:"count"`
	FirstTimestamp time.Time   `json:"firstTimestamp"`
	LastTimestamp  time.Time   `json:"lastTimestamp"`
}

// EventBatch is the payload of CmdRecordEvents.
type EventBatch struct {
	Events []Event `json:"events"`
}

// NewEvent is one occurrence at t.
func NewEvent(typ, reason string, obj ObjectRef, source EventSource, t time.Time, format string, args ...any) Event {
	return Event{Type: typ, Reason: reason, Object: obj, Source: source, Count: 1,
		FirstTimestamp: t, LastTimestamp: t, Message: fmt.Sprintf(format, args...)}
}

// RecordEvents is the command recording events. It is Ignorable: events
// are diagnostics, and a master of a version before them must not stop
// during a rolling upgrade for want of them.
func RecordEvents(events ...Event) Command {
	c := NewCommand(CmdRecordEvents, EventBatch{Events: events})
	c.Ignorable = true
	return c
}

// Check says what is wrong with an event as a client sent it.
func (e *Event) Check() error {
	switch {
	case e.Type != EventNormal && e.Type != EventWarning:
		return fmt.Errorf("event type %q: want Normal or Warning", e.Type)
	case !eventWord.MatchString(e.Reason):
		return fmt.Errorf("event reason %q: want one word such as BackOff", e.Reason)
	case !eventWord.MatchString(e.Object.Kind) || e.Object.Name == "" || len(e.Object.Namespace)+len(e.Object.Name) > 512:
		return fmt.Errorf("event involvedObject: want a kind and a name")
	case !eventWord.MatchString(e.Source.Component) || e.Source.Host != "" && !names.IsDNS1123Subdomain(e.Source.Host):
		return fmt.Errorf("event source: want a component, and a host name if any")
	case e.Count < 1 || e.Count > MaxEventCount:
		return fmt.Errorf("event count %d: want 1 to %d", e.Count, MaxEventCount)
	case e.FirstTimestamp.IsZero() || e.LastTimestamp.Before(e.FirstTimestamp):
		return fmt.Errorf("event timestamps: want a first, and a last not before it")
	}
	return nil
}

// Repeats reports whether e repeats o, as Kubernetes' event correlator
// aggregates: the same object, type, reason, message and source.
func (e *Event) Repeats(o *Event) bool {
	return e.Object == o.Object && e.Type == o.Type && e.Reason == o.Reason && e.Message == o.Message && e.Source == o.Source
}

// AddEvent adds e to log, kept in the order events were last seen, oldest
// first: a repeat of an event in log adds its count, keeps the older
// FirstTimestamp and moves to the end. It may write into log's array.
func AddEvent(log []Event, e Event) []Event {
	if i := slices.IndexFunc(log, func(o Event) bool { return e.Repeats(&o) }); i >= 0 {
		old := log[i]
		log = slices.Delete(log, i, i+1)
		e.Count = min(e.Count+old.Count, MaxEventCount)
		if old.FirstTimestamp.Before(e.FirstTimestamp) {
			e.FirstTimestamp = old.FirstTimestamp
		}
		if old.LastTimestamp.After(e.LastTimestamp) {
			e.LastTimestamp = old.LastTimestamp
		}
	}
	return append(log, e)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// recordEvents adds batch to a copy of log (AddEvent), then keeps each
// object's newest MaxEventsPerObject and the log's newest MaxEvents: the
// result depends on nothing but log and batch, so every member trims alike.
func recordEvents(log []Event, batch []Event) ([]Event, error) {
	if len(batch) > MaxEventBatch {
		return nil, fmt.Errorf("%d events in one batch: at most %d", len(batch), MaxEventBatch)
	}
	out := slices.Clone(log)
	for _, e := range batch {
		if err := e.Check(); err != nil {
			return nil, err
		}
		e.Message = truncate(e.Message, MaxEventMessage)
		out = AddEvent(out, e)
	}
	perObject := map[ObjectRef]int{}
	kept := make([]Event, 0, min(len(out), MaxEvents))
	for i := len(out) - 1; i >= 0; i-- { // newest first
		if perObject[out[i].Object]++; perObject[out[i].Object] <= MaxEventsPerObject && len(kept) < MaxEvents {
			kept = append(kept, out[i])
		}
	}
	slices.Reverse(kept)
	return kept, nil
}
