package reconcile

import (
	"maps"
	"slices"

	"github.com/berth/berth/appliance/state"
)

// Namespaces finishes the teardown of each namespace that left the
// repository: once its last pod is gone (its workloads went with the
// revision, and their pods stopped while its Services, ConfigMaps and
// Secrets stayed for them), what the namespace left in Terminating is
// dropped. Its claims are released by Claims, once no pod uses them.
func Namespaces(s *state.State) []state.Command {
	var cmds []state.Command
	for _, ns := range slices.Sorted(maps.Keys(s.Terminating)) {
		empty := true
		for range s.Pods.InNamespace(ns) {
			empty = false
			break
		}
		if empty {
			cmds = append(cmds, state.NewCommand(state.CmdForgetNamespace, state.NamespaceRef{Name: ns}))
		}
	}
	return cmds
}
