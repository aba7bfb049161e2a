package objects

import "testing"

// A container's own securityContext wins; the pod's fills what it leaves
// unset, as the kubelet merges them.
func TestEffectiveSecurityContext(t *testing.T) {
	u1, u2, yes := int64(1000), int64(2000), true
	pod := &PodSecurityContext{RunAsUser: &u1, RunAsNonRoot: &yes, SeccompProfile: &SeccompProfile{Type: "RuntimeDefault"}}
	if got := pod.Effective(nil); *got.RunAsUser != 1000 || !*got.RunAsNonRoot || got.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("container without one: %+v", got)
	}
	own := &SecurityContext{RunAsUser: &u2, SeccompProfile: &SeccompProfile{Type: "Unconfined"}}
	if got := pod.Effective(own); *got.RunAsUser != 2000 || got.SeccompProfile.Type != "Unconfined" || !*got.RunAsNonRoot || own.RunAsNonRoot != nil {
		t.Errorf("container with its own: %+v (its own changed: %v)", got, own.RunAsNonRoot)
	}
	if got := (*PodSecurityContext)(nil).Effective(own); got != own {
		t.Error("no pod context changed the container's")
	}
}
