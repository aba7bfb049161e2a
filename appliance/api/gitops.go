package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/berth/berth/schemas/objects"
)

// AppliedObjects are the objects of the applied revision (GET
// /v1/objects). A Secret's values are empty ("") but for admins.
type AppliedObjects struct {
	// Commit is the applied revision's; "" before any was applied (then
	// there are no objects).
	Commit  string          `json:"commit"`
	Objects []AppliedObject `json:"objects"`
}

// AppliedObject is one object of the applied revision, as the loader
// wrote it (every default applied, keys sorted).
type AppliedObject struct {
	ID   objects.ObjectID `json:"id"`
	JSON json.RawMessage  `json:"json"`
}

// SecretValues are a Secret's values as the client has them (data and
// stringData merged), for the masters to compare with the applied ones.
type SecretValues struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Data      map[string][]byte `json:"data"`
}

// SecretChange names the keys of a Secret whose values differ from the
// applied ones; keys only one side has are not listed (the client sees
// them in the redacted object).
type SecretChange struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Changed   []string `json:"changed"`
}

// SyncResult answers POST /v1/sync: the syncer's status once the sync
// ended (when waited for), and the revision of the commit it recorded or
// found recorded.
type SyncResult struct {
	Sync     SyncStatus       `json:"sync"`
	Waited   bool             `json:"waited"`
	Revision *RevisionSummary `json:"revision,omitempty"`
}

// Version is the masters' build.
type Version struct {
	Version string `json:"version"`
}

// AppliedObjects reads the objects of the applied revision.
func (c *Client) AppliedObjects(ctx context.Context) (AppliedObjects, error) {
	v, _, err := get[AppliedObjects](ctx, c, "/v1/objects", nil)
	return v, err
}

// CompareSecrets asks which keys of these Secrets have values that differ
// from the applied revision's. The values go to the masters, never back.
func (c *Client) CompareSecrets(ctx context.Context, secrets []SecretValues) ([]SecretChange, error) {
	var out []SecretChange
	_, err := c.do(ctx, http.MethodPost, "/v1/applied/secrets", nil, secrets, &out)
	return out, err
}

// Sync makes the masters fetch the config repository now (admin). With
// wait > 0 it returns once that fetch's commit is recorded (applied or
// rejected) or found already recorded, waiting at most wait.
func (c *Client) Sync(ctx context.Context, wait time.Duration) (SyncResult, error) {
	var out SyncResult
	var w *Watch
	if wait > 0 {
		// Not a blocking query (POSTs are not): the Watch carries ?wait=
		// and gives the master that long to answer.
		w = &Watch{Wait: wait}
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/sync", w, nil, &out)
	return out, err
}

// ServerVersion is the build of the master that answers.
func (c *Client) ServerVersion(ctx context.Context) (Version, error) {
	v, _, err := get[Version](ctx, c, "/v1/version", nil)
	return v, err
}
