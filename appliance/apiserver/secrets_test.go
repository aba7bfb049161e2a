package apiserver

import (
	"context"
	"reflect"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// TestSecretsValuesForAdminsOnly: every reader lists the Secrets and their
// keys; only an admin token reads their values (data decoded,
// stringData over data).
func TestSecretsValuesForAdminsOnly(t *testing.T) {
	admin, b := newTestAPI(t)
	ctx := context.Background()
	sec := objects.Secret{Type: "Opaque", Data: map[string]string{"user": "YWRtaW4=", "pw": "b2xk"}, StringData: map[string]string{"pw": "hunter2"}}
	sec.APIVersion, sec.Kind, sec.Metadata = "v1", "Secret", objects.ObjectMeta{Name: "db", Namespace: "default"}
	applyRevision(t, b, "abc", state.Object{ID: objects.ObjectID{Kind: "Secret", Namespace: "default", Name: "db"}, JSON: mustJSON(t, &sec)})
	got, err := admin.Secrets(ctx)
	want := []api.SecretSummary{{Namespace: "default", Name: "db", Type: "Opaque", Keys: []string{"pw", "user"},
		Values: map[string]string{"pw": "hunter2", "user": "admin"}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("admin: %+v %v, want %+v", got, err, want)
	}
	got, err = api.NewClient(admin.Server(), readOnly).Secrets(ctx)
	want[0].Values = nil
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("read-only: %+v %v, want %+v (no values)", got, err, want)
	}
}
