package reconcile

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas/objects"
)

// Claims records the repository's local-path claims in the state: each
// PersistentVolumeClaim, and one claim per ordinal of each StatefulSet's
// claim templates (those of ordinals scaled away are kept, as Kubernetes
// keeps them). The scheduler binds them. A claim that has left the
// repository (its StatefulSet with it) is released once no pod uses it;
// its node's agent then deletes the data and asks the masters to forget
// it. A released claim that comes back waits until it is forgotten, and
// starts empty.
func Claims(s *state.State, d *Desired) []state.Command {
	wanted := map[string]state.Claim{}
	for _, pvc := range d.Claims {
		c := claimOf(pvc.Metadata.Namespace, pvc.Metadata.Name, "", &pvc.Spec)
		wanted[c.Key()] = c
	}
	for _, ss := range d.StatefulSets {
		ns, name := ss.Metadata.Namespace, ss.Metadata.Name
		for i := range ss.Spec.VolumeClaimTemplates {
			t := &ss.Spec.VolumeClaimTemplates[i]
			keep := func(claim string) {
				if key := state.PodKey(ns, claim); wanted[key].Name == "" { // the repository's own claim of that name wins
					wanted[key] = claimOf(ns, claim, name, &t.Spec)
				}
			}
			for ord := range int(ss.Spec.Replicas) {
				keep(t.ClaimName(name, ord))
			}
			prefix := t.Metadata.Name + "-" + name + "-"
			for _, c := range s.Claims {
				if _, err := strconv.Atoi(strings.TrimPrefix(c.Name, prefix)); c.Namespace == ns && c.StatefulSet == name && strings.HasPrefix(c.Name, prefix) && err == nil {
					keep(c.Name)
				}
			}
		}
	}
	var cmds []state.Command
	for _, key := range slices.Sorted(maps.Keys(wanted)) {
		c, old := wanted[key], s.Claims[key]
		if old != nil {
			if old.Released {
				continue // forgotten once its data are gone; recorded anew then
			}
			c.NodeName = old.NodeName
			if c.Bytes == old.Bytes && c.StatefulSet == old.StatefulSet && slices.Equal(c.AccessModes, old.AccessModes) {
				continue
			}
		}
		cmds = append(cmds, state.NewCommand(state.CmdPutClaim, c))
	}
	used := map[string]bool{}
	for p := range s.Pods.All() {
		for _, name := range p.Spec.Claims() {
			used[state.PodKey(p.Namespace, name)] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.Claims)) {
		if c := *s.Claims[key]; !c.Released && wanted[key].Name == "" && !used[key] {
			c.Released = true
			cmds = append(cmds, state.NewCommand(state.CmdPutClaim, c))
		}
	}
	return cmds
}

func claimOf(namespace, name, statefulSet string, spec *objects.ClaimSpec) state.Claim {
	bytes, _ := spec.Resources.Requests.Storage.Value() // the loader checked the grammar
	return state.Claim{Namespace: namespace, Name: name, StatefulSet: statefulSet, Bytes: bytes, AccessModes: spec.AccessModes}
}
