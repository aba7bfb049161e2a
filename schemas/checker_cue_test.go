package schemas

import (
	"encoding/json"
	stderrors "errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/errors"
	cueyaml "cuelang.org/go/encoding/yaml"
	"github.com/berth/berth/schemas/diag"
	"go.yaml.in/yaml/v3"
)

// The checker compiled from the CUE schemas must decide exactly as CUE's
// own unification does: same documents accepted, same values (defaults
// included) produced. These tests hold it to that.

// cueReference validates documents the slow, exact way: #Kind & data.
type cueReference struct {
	ctx    *cue.Context
	schema cue.Value
}

func newCUEReference(t testing.TB) *cueReference {
	ctx := cuecontext.New()
	inst := build.NewContext().NewInstance("", nil)
	for name, src := range CUEFiles() {
		if err := inst.AddFile(name, src); err != nil {
			t.Fatal(err)
		}
	}
	v := ctx.BuildInstance(inst)
	if err := v.Err(); err != nil {
		t.Fatalf("schemas do not evaluate in CUE: %v", errors.Details(err, nil))
	}
	return &cueReference{ctx: ctx, schema: v}
}

// errReferenceCrashed: CUE's own YAML decoder panicked, so CUE has no
// verdict to compare with. cuelang.org/go v0.17.1 does on a bare "\r" line
// break (internal/encoding/yaml scopeEndBefore: index out of range);
// berth's loader, which does not use that decoder, reports such a file.
var errReferenceCrashed = stderrors.New("CUE's YAML decoder panicked")

func (r *cueReference) check(def, src string) (_ []byte, err error) {
	defer func() {
		if recover() != nil {
			err = errReferenceCrashed
		}
	}()
	expr, err := cueyaml.NewDecoder("doc.yaml", strings.NewReader(src)).Extract()
	if err != nil {
		return nil, err
	}
	u := r.schema.LookupPath(cue.ParsePath(def)).Unify(r.ctx.BuildExpr(expr))
	if err := u.Validate(cue.Concrete(true)); err != nil {
		return nil, err
	}
	return u.MarshalJSON()
}

// ours runs the compiled checker on the same document.
func ours(t testing.TB, def string, n *yaml.Node) ([]byte, []diag.Diagnostic) {
	schemas, err := schemaSet()
	if err != nil {
		t.Fatal(err)
	}
	c := newChecker("doc.yaml")
	v := c.value(schemas[def], n, nil)
	if len(c.diags) > 0 {
		return nil, c.diags
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b, nil
}

// comparable reports whether a document stays inside what both sides read
// alike. Known, documented differences are left out: null is "absent" to
// berth (as to Kubernetes) but a value to CUE; integers beyond 64 bits;
// non-string keys and explicit YAML tags; anchors (CUE expands them
// without berth's node budget).
func comparable(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.AliasNode:
		return false
	case yaml.ScalarNode:
		if n.Anchor != "" || (n.Tag != "" && n.Style&yaml.TaggedStyle != 0) {
			return false
		}
		switch n.ShortTag() {
		case "!!null", "!!binary", "!!timestamp":
			return false
		}
		_, _, err := scalar(n)
		return err == nil
	}
	if n.Anchor != "" {
		return false
	}
	seen := map[string]bool{}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			if c.Kind != yaml.ScalarNode || c.ShortTag() != "!!str" || seen[c.Value] {
				return false
			}
			seen[c.Value] = true
		}
		if !comparable(c) {
			return false
		}
	}
	return true
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// agree checks one document against both; it returns false when the
// document is outside what they can be compared on.
func agree(t *testing.T, ref *cueReference, src string) bool {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil || len(doc.Content) == 0 {
		return false
	}
	root := doc.Content[0]
	kind := mapGet(root, "kind")
	if root.Kind != yaml.MappingNode || kind == nil || !comparable(root) {
		return false
	}
	ks, ok := kindSchemas[kind.Value]
	if !ok {
		return false
	}
	got, diags := ours(t, ks.def, root)
	want, err := ref.check(ks.def, src)
	if stderrors.Is(err, errReferenceCrashed) {
		return false
	}
	switch {
	case err == nil && diags != nil:
		t.Errorf("CUE accepts, berth rejects: %v\n%s", diags, src)
	case err != nil && diags == nil:
		t.Errorf("berth accepts, CUE rejects: %v\n%s", errors.Details(err, nil), src)
	case err == nil && !sameJSON(got, want):
		t.Errorf("values differ\nberth: %s\ncue:   %s\n%s", got, want, src)
	}
	return true
}

// mutations derives documents from a valid one: every scalar replaced by
// values of other kinds and shapes, every field removed, a stray field added
// to every struct.
func mutations(t testing.TB, src string) []string {
	var out []string
	replacements := []string{`"x"`, `""`, `-1`, `0`, `1.5`, `70000`, `true`, `"Ab_c"`, `"25%"`, `"100m"`, `[]`, `{}`}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	render := func() string {
		b, err := yaml.Marshal(&doc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			saved := *n
			for _, r := range replacements {
				var repl yaml.Node
				if err := yaml.Unmarshal([]byte(r), &repl); err != nil {
					t.Fatal(err)
				}
				*n = *repl.Content[0]
				out = append(out, render())
			}
			*n = saved
		case yaml.MappingNode:
			saved := n.Content
			for i := 0; i+1 < len(saved); i += 2 {
				n.Content = append(append([]*yaml.Node{}, saved[:i]...), saved[i+2:]...)
				out = append(out, render())
			}
			n.Content = append(append([]*yaml.Node{}, saved...),
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "bogus"}, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "1"})
			out = append(out, render())
			n.Content = saved
			for i := 1; i < len(saved); i += 2 {
				walk(saved[i])
			}
		case yaml.SequenceNode, yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(&doc)
	return out
}

// seedDocuments are valid documents of every kind, from the examples and
// from hand-written specs that reach the less common fields.
func seedDocuments(t testing.TB) []string {
	docs := []string{deployYAML, cmYAML, kubectlLoadBalancer,
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}]\nstatus:\n  loadBalancer:\n    ingress: [{ip: 10.0.0.2, ports: [{port: 80, protocol: TCP}]}]\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  clusterIP: None\n  publishNotReadyAddresses: true\n  selector: {app: db}\n  ports: [{port: 5432}]\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\ntype: Opaque\ndata: {pw: aHVudGVyMg==}\nstringData: {user: admin}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: NodePort\n  selector: {app: a}\n  ports:\n    - {name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: UDP}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  strategy: {type: Recreate}\n  selector:\n    matchExpressions: [{key: app, operator: In, values: [a]}]\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      nodeSelector: {disk: ssd}\n      containers:\n        - name: c\n          image: i\n          command: [sh, -c]\n          args: [sleep 1]\n          livenessProbe:\n            exec: {command: [true]}\n            periodSeconds: 5\n          resources: {limits: {cpu: 1, memory: 1.5Gi}}\n          securityContext: {privileged: false, runAsGroup: 10, capabilities: {add: [NET_ADMIN]}}\n          volumeMounts: [{name: tmp, mountPath: /tmp}]\n      volumes:\n        - {name: tmp, emptyDir: {medium: Memory, sizeLimit: 64Mi}}\n        - {name: cfg, configMap: {name: c, items: [{key: k, path: p}], defaultMode: 0o644}}\n",
	}
	for _, f := range []string{"namespace.yaml", "config.yaml", "app.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, strings.Split(string(b), "\n---\n")...)
	}
	return docs
}

func TestCheckerAgreesWithCUE(t *testing.T) {
	ref := newCUEReference(t)
	compared := 0
	for _, seed := range seedDocuments(t) {
		if !agree(t, ref, seed) {
			t.Fatalf("seed is not comparable:\n%s", seed)
		}
		for _, m := range mutations(t, seed) {
			if agree(t, ref, m) {
				compared++
			}
		}
	}
	if compared < 1000 {
		t.Errorf("compared only %d documents", compared)
	}
	t.Logf("%d mutated documents judged alike by berth and CUE", compared)
}

func FuzzCheckerAgreesWithCUE(f *testing.F) {
	for _, s := range seedDocuments(f) {
		f.Add(s)
	}
	ref := newCUEReference(f)
	f.Fuzz(func(t *testing.T, src string) {
		agree(t, ref, src)
	})
}
