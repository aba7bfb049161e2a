package apiserver

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// objectKinds are the kinds /v1/objects?kind= may name: those a revision
// holds. Anything else is refused, so a query never echoes a client's text.
var objectKinds = []string{"ConfigMap", "CronJob", "DaemonSet", "Deployment", "Job", "Namespace",
	"PersistentVolumeClaim", "Secret", "Service", "ServiceAccount", "StatefulSet"}

// appliedObjects lists the applied revision's objects as the repository
// declared them (after validation, with their defaults), one kind's with
// ?kind=: for `berth get -o json` to show each object's spec, and for
// `berth diff` to compare. A Secret's values are shown to admins only, as
// base64 data the way the Kubernetes API returns them (stringData merged
// in); a read-only token sees its keys with empty values, so that it can
// count them but not read them.
func (s *Server) appliedObjects(w http.ResponseWriter, r *http.Request, st *state.State) (any, error) {
	kind := r.URL.Query().Get("kind")
	if kind != "" && !slices.Contains(objectKinds, kind) {
		return nil, errorf(http.StatusBadRequest, "kind: want one of %v", objectKinds)
	}
	out := api.AppliedObjects{Objects: []api.AppliedObject{}}
	rev := st.Current()
	if rev == nil {
		return out, nil
	}
	out.Commit = rev.Commit
	reveal := identityOf(r).Role == auth.RoleAdmin
	for _, o := range rev.Objects {
		if kind != "" && o.ID.Kind != kind {
			continue
		}
		b := o.JSON
		if o.ID.Kind == "Secret" {
			var err error
			if b, err = shownSecret(o.JSON, reveal); err != nil {
				return nil, err
			}
		}
		out.Objects = append(out.Objects, api.AppliedObject{ID: o.ID, JSON: b})
	}
	return out, nil
}

// lastApplied is kubectl's annotation holding a whole object as applied:
// a Secret's would carry its values.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// shownSecret is a Secret as the API shows it; reveal: with its values.
func shownSecret(raw json.RawMessage, reveal bool) (json.RawMessage, error) {
	var sec objects.Secret
	if err := json.Unmarshal(raw, &sec); err != nil {
		return nil, err
	}
	data := objects.SecretData(&sec)
	sec.Data, sec.StringData = map[string]string{}, nil
	for _, k := range slices.Sorted(maps.Keys(data)) {
		sec.Data[k] = ""
		if reveal {
			sec.Data[k] = base64.StdEncoding.EncodeToString(data[k])
		}
	}
	if !reveal && sec.Metadata.Annotations[lastApplied] != "" {
		sec.Metadata.Annotations = maps.Clone(sec.Metadata.Annotations)
		delete(sec.Metadata.Annotations, lastApplied)
	}
	return json.Marshal(&sec)
}
