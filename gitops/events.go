package gitops

import (
	"strings"
	"time"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/diag"
)

// EventComponent is the source of the syncer's events.
const EventComponent = "gitops-syncer"

// eventErrors is how many of a rejected revision's errors its event
// quotes: the first few say what to fix; `berth get revisions` has all.
const eventErrors = 3

// revisionEvent tells that rev was applied or rejected, on the object
// Revision/COMMIT, with the first errors of a rejected one.
func revisionEvent(rev *state.Revision, now time.Time) state.Event {
	obj := state.ObjectRef{Kind: "Revision", Name: rev.Commit}
	src := state.EventSource{Component: EventComponent}
	subject := strings.SplitN(rev.Message, "\n", 2)[0]
	if rev.Status != state.RevisionRejected {
		return state.NewEvent(state.EventNormal, "Applied", obj, src, now, "Applying commit %s (%s) by %s: %d objects", short(rev.Commit), subject, rev.Author, len(rev.Objects))
	}
	var first []string
	for _, d := range rev.Diagnostics {
		if d.Severity == diag.Error && len(first) < eventErrors {
			first = append(first, d.String())
		}
	}
	return state.NewEvent(state.EventWarning, "Rejected", obj, src, now, "Commit %s (%s) by %s rejected with %d errors: %s",
		short(rev.Commit), subject, rev.Author, countErrors(rev.Diagnostics), strings.Join(first, "; "))
}
