package api

import "context"

// SecretSummary is one Secret of the applied revision. Keys are listed for
// every reader; Values only for admin tokens, so a read-only token (the
// dashboard of someone who only watches) never carries a secret's value.
type SecretSummary struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Keys      []string `json:"keys"`
	// Values are by key, decoded from data's base64 (stringData as given).
	Values map[string]string `json:"values,omitempty"`
}

func (c *Client) Secrets(ctx context.Context) ([]SecretSummary, error) {
	v, _, err := get[[]SecretSummary](ctx, c, "/v1/secrets", nil)
	return v, err
}
