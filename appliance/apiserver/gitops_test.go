package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// The applied revision's objects are readable with a read-only token, a
// Secret's keys but none of its values; a comparison says which values
// differ, never what they are.
func TestAppliedObjectsHideSecretValues(t *testing.T) {
	c, b := newTestAPI(t)
	ro := api.NewClient(c.Server(), readOnly)
	ctx := context.Background()
	if got, err := ro.AppliedObjects(ctx); err != nil || got.Commit != "" || len(got.Objects) != 0 {
		t.Fatalf("before any revision: %+v %v", got, err)
	}
	secretID := objects.ObjectID{Kind: "Secret", Namespace: "shop", Name: "db"}
	cmID := objects.ObjectID{Kind: "ConfigMap", Namespace: "shop", Name: "conf"}
	secret := `{"apiVersion":"v1","data":{"password":"aHVudGVyMg=="},"kind":"Secret","metadata":{"name":"db","namespace":"shop"},"stringData":{"user":"admin"},"type":"Opaque"}`
	cm := `{"apiVersion":"v1","data":{"big":"12345678901234567890"},"kind":"ConfigMap","metadata":{"name":"conf","namespace":"shop"}}`
	applyRevision(t, b, "c1", state.Object{ID: secretID, JSON: json.RawMessage(secret)}, state.Object{ID: cmID, JSON: json.RawMessage(cm)})
	got, err := ro.AppliedObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != "c1" || len(got.Objects) != 2 {
		t.Fatalf("applied objects: %+v", got)
	}
	compact := func(j json.RawMessage) string {
		var b bytes.Buffer
		if err := json.Compact(&b, j); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	redacted := compact(got.Objects[0].JSON)
	if strings.Contains(redacted, "aHVudGVy") || strings.Contains(redacted, "admin") ||
		!strings.Contains(redacted, `"password":""`) || !strings.Contains(redacted, `"user":""`) {
		t.Errorf("Secret as served: %s", redacted)
	}
	if compact(got.Objects[1].JSON) != cm {
		t.Errorf("ConfigMap as served: %s, want it as stored", got.Objects[1].JSON)
	}

	changes, err := ro.CompareSecrets(ctx, []api.SecretValues{
		{Namespace: "shop", Name: "db", Data: map[string][]byte{"password": []byte("hunter3"), "user": []byte("admin"), "new": []byte("x")}},
		{Namespace: "shop", Name: "absent", Data: map[string][]byte{"k": []byte("v")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []api.SecretChange{{Namespace: "shop", Name: "db", Changed: []string{"password"}}}; !reflect.DeepEqual(changes, want) {
		t.Errorf("changes = %+v, want %+v", changes, want)
	}
	// Hostile bodies: too many Secrets, not JSON.
	many := make([]api.SecretValues, maxComparedSecrets+1)
	var e *api.Error
	if _, err := ro.CompareSecrets(ctx, many); !errors.As(err, &e) || e.Code != http.StatusBadRequest {
		t.Errorf("%d Secrets: %v, want 400", len(many), err)
	}
	resp, err := http.Post(c.Server()+"/v1/applied/secrets", "application/json", strings.NewReader(`{"x":`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
}

// Without a repository POST /v1/sync is 404 for an admin and 403 for a
// read-only token; GET /v1/version answers readers.
func TestSyncWithoutRepoAndVersion(t *testing.T) {
	c, _ := newTestAPI(t)
	ro := api.NewClient(c.Server(), readOnly)
	var e *api.Error
	if _, err := c.Sync(context.Background(), 0); !errors.As(err, &e) || e.Code != http.StatusNotFound {
		t.Errorf("admin, no repo: %v, want 404", err)
	}
	if _, err := ro.Sync(context.Background(), 0); !errors.As(err, &e) || e.Code != http.StatusForbidden {
		t.Errorf("read-only: %v, want 403", err)
	}
	if v, err := ro.ServerVersion(context.Background()); err != nil || v.Version != "" {
		t.Errorf("version: %+v %v", v, err)
	}
}
