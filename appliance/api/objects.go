package api

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// Objects lists the applied revision's objects of a kind (e.g.
// "ConfigMap"; "" for every kind) as the repository declared them. A
// Secret's data values are empty unless the token is an admin's.
func (c *Client) Objects(ctx context.Context, kind string) ([]json.RawMessage, error) {
	path := "/v1/objects"
	if kind != "" {
		path += "?kind=" + url.QueryEscape(kind)
	}
	v, _, err := get[AppliedObjects](ctx, c, path, nil)
	out := make([]json.RawMessage, len(v.Objects))
	for i, o := range v.Objects {
		out[i] = o.JSON
	}
	return out, err
}

// WaitIndex blocks until the cluster's state is past index (at most wait)
// and returns the index it has then: a watcher's cue to read again.
func (c *Client) WaitIndex(ctx context.Context, index uint64, wait time.Duration) (uint64, error) {
	_, idx, err := get[Status](ctx, c, "/v1/status", &Watch{Index: index, Wait: wait})
	return idx, err
}
