package schemas

import (
	"errors"

	"go.yaml.in/yaml/v3"
)

// expandMerges replaces YAML merge keys (`<<: *anchor`, or a list of
// anchors) in every mapping of n with the entries they bring, as the
// Kubernetes API server's YAML decoder does: keys written in the mapping
// win, then the merged mappings in the order given. Merged entries keep the
// positions of the anchor's lines. It returns the merge key that names
// something other than mappings.
func expandMerges(n *yaml.Node) (*yaml.Node, error) {
	return mergeIn(n, map[*yaml.Node]bool{})
}

var errMergeValue = errors.New("a merge key (<<) takes a mapping or a list of mappings")

func mergeIn(n *yaml.Node, seen map[*yaml.Node]bool) (*yaml.Node, error) {
	n = deref(n)
	if seen[n] {
		return nil, nil // expanded already, or an alias back up the tree
	}
	seen[n] = true
	if n.Kind != yaml.MappingNode {
		for _, c := range n.Content {
			if at, err := mergeIn(c, seen); err != nil {
				return at, err
			}
		}
		return nil, nil
	}
	var own, merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if at, err := mergeIn(v, seen); err != nil {
			return at, err
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			own = append(own, k, v)
			continue
		}
		sources := []*yaml.Node{v}
		if deref(v).Kind == yaml.SequenceNode {
			sources = deref(v).Content
		}
		for _, src := range sources {
			if src = deref(src); src.Kind != yaml.MappingNode {
				return k, errMergeValue
			}
			merged = append(merged, src.Content...)
		}
	}
	if len(own) == len(n.Content) {
		return nil, nil
	}
	have := map[string]bool{}
	for i := 0; i < len(own); i += 2 {
		have[own[i].Value] = true
	}
	for i := 0; i+1 < len(merged); i += 2 {
		if k := merged[i]; !have[k.Value] {
			have[k.Value] = true
			own = append(own, k, merged[i+1])
		}
	}
	n.Content = own
	return nil, nil
}

// deref follows aliases; nil stays nil.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
