package runtime

import (
	"context"
	"fmt"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
)

// ContainerUsage is what one running container has used, from its cgroup
// as containerd reports it (task metrics).
type ContainerUsage struct {
	Pod       PodRef
	Container string
	// CPUNanos is the CPU time used since the container started: a rate
	// needs two readings.
	CPUNanos uint64
	// WorkingSet is memory in use less the inactive page cache, which the
	// kernel can take back: the kubelet's (and kubectl top's) measure.
	WorkingSet uint64
}

// Usage reads the cgroup statistics of every running container of a pod
// (sandboxes excepted): cgroup v1 and v2 alike.
func (r *Runtime) Usage(ctx context.Context) ([]ContainerUsage, error) {
	ctx = r.withLog(ctx)
	list, err := r.client.Containers(ctx, fmt.Sprintf(`labels.%q==%q`, labelKind, kindContainer))
	if err != nil {
		return nil, fmt.Errorf("runtime: list containers: %w", err)
	}
	var out []ContainerUsage
	for _, c := range list {
		labels, err := c.Labels(ctx)
		if err != nil {
			continue // removed meanwhile
		}
		task, err := c.Task(ctx, nil)
		if errdefs.IsNotFound(err) {
			continue // not running: uses nothing
		}
		if err != nil {
			return nil, fmt.Errorf("runtime: usage of %s: %w", c.ID(), err)
		}
		m, err := task.Metrics(ctx)
		if errdefs.IsNotFound(err) {
			continue // exited meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("runtime: usage of %s: %w", c.ID(), err)
		}
		data, err := typeurl.UnmarshalAny(m.Data)
		if err != nil {
			return nil, fmt.Errorf("runtime: usage of %s: %w", c.ID(), err)
		}
		u := ContainerUsage{Pod: refFromLabels(labels), Container: labels[labelContainerName]}
		switch s := data.(type) {
		case *v1.Metrics:
			u.CPUNanos = s.GetCPU().GetUsage().GetTotal()
			u.WorkingSet = workingSet(s.GetMemory().GetUsage().GetUsage(), s.GetMemory().GetTotalInactiveFile())
		case *v2.Metrics:
			u.CPUNanos = s.GetCPU().GetUsageUsec() * 1000
			u.WorkingSet = workingSet(s.GetMemory().GetUsage(), s.GetMemory().GetInactiveFile())
		default:
			return nil, fmt.Errorf("runtime: usage of %s: unknown metrics type %T", c.ID(), data)
		}
		out = append(out, u)
	}
	return out, nil
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}
