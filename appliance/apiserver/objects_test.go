package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// TestAppliedObjects: /v1/objects lists the applied revision's objects of
// a kind; a Secret's values (data and stringData, as base64 data) reach
// admins only, a read-only token sees its keys with empty values and no
// last-applied annotation; a kind it does not know is a 400.
func TestAppliedObjects(t *testing.T) {
	admin, b := newTestAPI(t)
	ro := api.NewClient(admin.Server(), readOnly)
	ctx := context.Background()
	sec := objects.Secret{Type: "Opaque", Data: map[string]string{"user": "YWRt"}, StringData: map[string]string{"pw": "hunter2"}}
	sec.APIVersion, sec.Kind = "v1", "Secret"
	sec.Metadata = objects.ObjectMeta{Name: "db", Namespace: "shop", Annotations: map[string]string{lastApplied: `{"stringData":{"pw":"hunter2"}}`, "team": "a"}}
	cm := objects.ConfigMap{Data: map[string]string{"k": "v"}}
	cm.APIVersion, cm.Kind, cm.Metadata = "v1", "ConfigMap", objects.ObjectMeta{Name: "conf", Namespace: "shop"}
	applyRevision(t, b, "abc",
		state.Object{ID: objects.ObjectID{Kind: "Secret", Namespace: "shop", Name: "db"}, JSON: mustJSON(t, &sec)},
		state.Object{ID: objects.ObjectID{Kind: "ConfigMap", Namespace: "shop", Name: "conf"}, JSON: mustJSON(t, &cm)})
	secretOf := func(c *api.Client) objects.Secret {
		t.Helper()
		objs, err := c.Objects(ctx, "Secret")
		if err != nil || len(objs) != 1 {
			t.Fatalf("Secrets: %d %v", len(objs), err)
		}
		var s objects.Secret
		if err := json.Unmarshal(objs[0], &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := secretOf(admin); s.Data["user"] != "YWRt" || s.Data["pw"] != "aHVudGVyMg==" || s.StringData != nil || s.Metadata.Annotations[lastApplied] == "" {
		t.Errorf("admin's Secret: %+v", s)
	}
	s := secretOf(ro)
	if len(s.Data) != 2 || s.Data["user"] != "" || s.Data["pw"] != "" || s.StringData != nil || s.Metadata.Annotations[lastApplied] != "" || s.Metadata.Annotations["team"] != "a" {
		t.Errorf("read-only's Secret: %+v", s)
	}
	if objs, err := ro.Objects(ctx, ""); err != nil || len(objs) != 2 || strings.Contains(string(objs[0])+string(objs[1]), "hunter2") {
		t.Errorf("every object, read-only: %s %v", objs, err)
	}
	if objs, err := ro.Objects(ctx, "ConfigMap"); err != nil || len(objs) != 1 || !strings.Contains(string(objs[0]), `"k": "v"`) {
		t.Errorf("ConfigMaps: %s %v", objs, err)
	}
	if _, err := ro.Objects(ctx, "Bogus<script>"); code(err) != http.StatusBadRequest || strings.Contains(err.Error(), "script") {
		t.Errorf("unknown kind: %v, want a 400 that does not echo it", err)
	}
}
