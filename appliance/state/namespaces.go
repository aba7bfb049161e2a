package state

import (
	"fmt"
	"slices"
)

// A Namespace that leaves the repository takes its objects with it in
// dependency order, as Kubernetes' namespace controller deletes a
// namespace's content: its workloads go with the revision, and their pods
// stop (gracefully, preStop hooks run) while the namespace's Services,
// ConfigMaps and Secrets stay for them, in Terminating; its claims are
// released once no pod uses them (the claims controller); once its last
// pod is gone, CmdForgetNamespace drops what Terminating held.

// lingering are the kinds a namespace's pods may still need while they
// stop: their configuration, credentials and names.
var lingering = []string{"Service", "ConfigMap", "Secret"}

// NamespaceRef names a namespace.
type NamespaceRef struct {
	Name string `json:"name"`
}

// PermanentNamespace reports whether Kubernetes keeps a namespace whatever
// is declared: these are never removed, so leaving out their Namespace
// object removes nothing.
func PermanentNamespace(name string) bool {
	switch name {
	case "default", "kube-system", "kube-public", "kube-node-lease":
		return true
	}
	return false
}

// declared is the namespaces a revision has a Namespace object for.
func declared(r *Revision) map[string]bool {
	out := map[string]bool{}
	if r == nil {
		return out
	}
	for _, o := range r.Objects {
		if o.ID.Kind == "Namespace" {
			out[o.ID.Name] = true
		}
	}
	return out
}

// terminateNamespaces moves to Terminating the lingering objects of every
// namespace that prev declared and next does not, and takes back from it
// every namespace next declares again.
func terminateNamespaces(w *writer, prev, next *Revision) {
	was, is := declared(prev), declared(next)
	for ns := range w.s.Terminating {
		if is[ns] {
			delete(w.Terminating(), ns)
		}
	}
	if prev == nil {
		return
	}
	for ns := range was {
		if is[ns] || PermanentNamespace(ns) {
			continue
		}
		var keep []Object
		for _, o := range prev.Objects {
			if o.ID.Namespace == ns && slices.Contains(lingering, o.ID.Kind) {
				keep = append(keep, o)
			}
		}
		w.Terminating()[ns] = keep
	}
}

func forgetNamespace(w *writer, r NamespaceRef) error {
	if _, ok := w.s.Terminating[r.Name]; !ok {
		return nil // forgotten already
	}
	for p := range w.pods.inNamespace(r.Name) {
		return fmt.Errorf("namespace %s still has pod %s", r.Name, p.Name)
	}
	delete(w.Terminating(), r.Name)
	return nil
}
