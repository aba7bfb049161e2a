package api

import (
	"context"
	"time"

	"github.com/berth/berth/appliance/state"
)

// CronJobStatus is one CronJob of the applied revision and its runs.
type CronJobStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Schedule  string `json:"schedule"`
	TimeZone  string `json:"timeZone,omitempty"`
	Suspend   bool   `json:"suspend"`
	// Active counts its runs that have not finished.
	Active int `json:"active"`
	// LastSchedule is the last schedule time it ran for (zero: none yet).
	LastSchedule time.Time `json:"lastSchedule,omitzero"`
}

// Jobs lists the Job runs: the Jobs of the applied revision and those
// CronJobs made.
func (c *Client) Jobs(ctx context.Context) ([]state.Job, error) {
	v, _, err := get[[]state.Job](ctx, c, "/v1/jobs", nil)
	return v, err
}

func (c *Client) CronJobs(ctx context.Context) ([]CronJobStatus, error) {
	v, _, err := get[[]CronJobStatus](ctx, c, "/v1/cronjobs", nil)
	return v, err
}

// DaemonSetStatus is one DaemonSet of the applied revision: on how many
// nodes it should run, and runs, ready and of its current template.
type DaemonSetStatus struct {
	Namespace    string            `json:"namespace"`
	Name         string            `json:"name"`
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	Desired      int               `json:"desired"`
	Current      int               `json:"current"`
	Ready        int               `json:"ready"`
	UpToDate     int               `json:"upToDate"`
}

func (c *Client) DaemonSets(ctx context.Context) ([]DaemonSetStatus, error) {
	v, _, err := get[[]DaemonSetStatus](ctx, c, "/v1/daemonsets", nil)
	return v, err
}

// StatefulSetStatus is one StatefulSet of the applied revision: how many
// pods it wants, has, has ready and of its current template.
type StatefulSetStatus struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	ServiceName string `json:"serviceName,omitempty"`
	Replicas    int32  `json:"replicas"`
	Current     int    `json:"current"`
	Ready       int    `json:"ready"`
	UpToDate    int    `json:"upToDate"`
}

func (c *Client) StatefulSets(ctx context.Context) ([]StatefulSetStatus, error) {
	v, _, err := get[[]StatefulSetStatus](ctx, c, "/v1/statefulsets", nil)
	return v, err
}

// ClaimStatus is a claim as the state holds it, with its phase: Pending
// (not bound yet), Bound, or Released (its data being deleted), and the
// pods that use it.
type ClaimStatus struct {
	state.Claim
	Phase string   `json:"phase"`
	Pods  []string `json:"pods,omitempty"`
}

func (c *Client) Claims(ctx context.Context) ([]ClaimStatus, error) {
	v, _, err := get[[]ClaimStatus](ctx, c, "/v1/claims", nil)
	return v, err
}
