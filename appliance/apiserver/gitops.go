package apiserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/httpserve"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// secretKind is the kind whose values never leave the masters but to the
// agents that run its pods (and admins reading a node's pods).
const secretKind = "Secret"

// maxComparedSecrets bounds one comparison; a repository with more
// Secrets than this is diffed in several calls.
const maxComparedSecrets = 1000

// compareSecrets says which keys of the Secrets sent have values that
// differ from the applied revision's: the values come in, never go out.
// A reader can so test a guess of a value, one request per guess, as
// Argo CD's diff of a local manifest lets its users; it learns nothing it
// could test offline.
func (s *Server) compareSecrets(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	var in []api.SecretValues
	if err := decodeBody(r, &in); err != nil {
		return nil, err
	}
	if len(in) > maxComparedSecrets {
		return nil, errorf(http.StatusBadRequest, "%d Secrets: compare at most %d at once", len(in), maxComparedSecrets)
	}
	applied := map[objects.ObjectID]map[string][]byte{}
	if rev := st.Current(); rev != nil {
		for _, o := range rev.Objects {
			if o.ID.Kind != secretKind {
				continue
			}
			var sec objects.Secret
			if err := json.Unmarshal(o.JSON, &sec); err != nil {
				return nil, err
			}
			applied[o.ID] = objects.SecretData(&sec)
		}
	}
	out := []api.SecretChange{}
	for _, sv := range in {
		have, ok := applied[objects.ObjectID{Kind: secretKind, Namespace: sv.Namespace, Name: sv.Name}]
		if !ok {
			continue
		}
		var changed []string
		for _, k := range slices.Sorted(maps.Keys(sv.Data)) {
			if old, ok := have[k]; ok && subtle.ConstantTimeCompare(old, sv.Data[k]) != 1 {
				changed = append(changed, k)
			}
		}
		if len(changed) > 0 {
			out = append(out, api.SecretChange{Namespace: sv.Namespace, Name: sv.Name, Changed: changed})
		}
	}
	return out, nil
}

// syncNow is POST /v1/sync[?wait=D]: the leader's syncer fetches at once
// (a follower relays the call, whose token the leader judges again). With
// a wait it answers once that fetch's commit is recorded, with its
// revision: applied, or rejected with the diagnostics.
func (s *Server) syncNow(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	if s.cfg.SyncNow == nil || s.cfg.Webhook.Trigger == nil {
		return nil, errorf(http.StatusNotFound, "this master follows no config repository (start it with --repo)")
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		var err error
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return nil, errorf(http.StatusBadRequest, "wait: want a duration such as 2m")
		}
		wait = min(wait, s.cfg.MaxWait)
	}
	if wait > 0 {
		httpserve.Hold(w, r, wait)
	}
	if s.cfg.Cluster != nil && !s.cfg.Cluster.IsLeader() {
		if s.forwardToLeader(w, r) {
			return nil, errForwarded
		}
		return nil, errorf(http.StatusServiceUnavailable, "no leader to sync: try again")
	}
	if wait == 0 {
		s.cfg.Webhook.Trigger()
		return api.SyncResult{Sync: s.cfg.Sync()}, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	sync, err := s.cfg.SyncNow(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, errorf(http.StatusGatewayTimeout, "the sync did not end within %s (it goes on: see berth status)", wait)
	}
	if err != nil {
		return nil, errorf(http.StatusServiceUnavailable, "%v", err)
	}
	out := api.SyncResult{Sync: sync, Waited: true}
	revs := s.cfg.Backend.State().Revisions
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].Commit == sync.Commit {
			sum := summary(&revs[i])
			out.Revision = &sum
			break
		}
	}
	return out, nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	return api.Version{Version: s.cfg.Version}, nil
}
