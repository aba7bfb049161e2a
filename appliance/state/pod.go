package state

import (
	"fmt"
	"strings"

	"github.com/berth/berth/schemas/names"
)

// LogContainer picks the container a log request names, checked against
// the pod's spec as the kubelet checks it: one the spec lists, or the only
// one when name is empty. The error quotes name only when it is a valid
// container name (a DNS label): an answer never echoes a path or a long or
// odd string back.
func (p *Pod) LogContainer(name string) (string, error) {
	listed := make([]string, 0, len(p.Spec.Containers))
	for _, c := range p.Spec.Containers {
		if name != "" && c.Name == name {
			return name, nil
		}
		listed = append(listed, c.Name)
	}
	switch {
	case name == "" && len(listed) == 1:
		return listed[0], nil
	case name == "":
		return "", fmt.Errorf("pod %q has %d containers; choose one of: %s", p.Key(), len(listed), strings.Join(listed, ", "))
	case names.DNSLabel(name) != nil:
		return "", fmt.Errorf("container name is not valid for pod %q: it %v", p.Key(), names.ErrDNSLabel)
	}
	return "", fmt.Errorf("container %q is not valid for pod %q", name, p.Key())
}
