package apiserver

import (
	"maps"
	"net/http"
	"slices"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/reconcile"
	"github.com/berth/berth/schemas/objects"
)

// secrets lists the applied revision's Secrets by name and keys; their
// values go to admin tokens only (kubectl's RBAC would let a viewer list
// Secrets with their data; berth's read-only role is for watching, and
// reads none).
func (s *Server) secrets(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	d, err := reconcile.DesiredState(st)
	if err != nil {
		return nil, err
	}
	values := identityOf(r).Role == auth.RoleAdmin
	out := []api.SecretSummary{}
	for _, key := range slices.Sorted(maps.Keys(d.Secrets)) {
		sec := d.Secrets[key]
		all := map[string]string{}
		for k, v := range objects.SecretData(sec) { // stringData over data, as the API server merges them
			all[k] = string(v)
		}
		ss := api.SecretSummary{Namespace: sec.Metadata.Namespace, Name: sec.Metadata.Name, Type: sec.Type, Keys: slices.Sorted(maps.Keys(all))}
		if values {
			ss.Values = all
		}
		out = append(out, ss)
	}
	return out, nil
}
