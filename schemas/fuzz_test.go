package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The loader's fuzz targets: whatever the bytes, no panic, no hang, and
// every diagnostic is placed at a real position in the file.

func checkResult(t *testing.T, file string, fr fileResult) {
	for _, d := range fr.diags {
		if d.File != file || d.Line < 1 || d.Column < 1 || d.Message == "" {
			t.Fatalf("diagnostic without a proper position or message: %#v", d)
		}
	}
	for _, doc := range fr.docs {
		if doc.obj != nil && !json.Valid(doc.json) {
			t.Fatalf("object with invalid JSON: %s", doc.json)
		}
	}
}

func FuzzLoadYAML(f *testing.F) {
	for _, s := range seedDocuments(f) {
		f.Add([]byte(s))
	}
	for _, s := range []string{"a: b: c", "- x\n- y", "---\n---\n", "a: &a [*a]", "a: *b", "{", "\t", "!!binary x", "? [a]\n: b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkResult(t, "f.yaml", loadYAML(nil, "f.yaml", b, false))
	})
}

func FuzzLoadJSON(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}}`))
	f.Add([]byte(`[1, 2`))
	f.Add([]byte(`{"a": 1} {"b": 2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkResult(t, "f.json", loadYAML(nil, "f.json", b, true))
	})
}

func FuzzLoadCUE(f *testing.F) {
	for _, name := range []string{"apps.cue", "templates.cue"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "cue-app", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("package x\ncm: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: string}\n")
	f.Add("package x\na: b\nb: a\n")
	f.Add("package x\nl: [for i in [1,2,3] {apiVersion: \"v1\", kind: \"Namespace\", metadata: name: \"n\\(i)\"}]\n")
	f.Fuzz(func(t *testing.T, src string) {
		// Keep each input cheap: CUE evaluation of large comprehensions is
		// not what this target looks for.
		if len(src) > 4096 || strings.Count(src, "for") > 4 {
			return
		}
		checkResult(t, "f.cue", loadCUE(nil, []string{"f.cue"}, [][]byte{[]byte(src)}))
	})
}

// FuzzKustomize renders fuzzed kustomization.yaml content over a fixed
// repository (a base, resources and patches beside it): no panic or hang,
// diagnostics in the repository's files, nothing fetched, and no origin
// annotation left on an object.
func FuzzKustomize(f *testing.F) {
	files := map[string]string{"app/deploy.yaml": deployYAML, "app/cm.yaml": cmYAML}
	for k, v := range kustomizeRepo {
		files[strings.Replace(k, "overlays/prod/", "app/", 1)] = v
	}
	dir := writeRepo(f, files)
	fetched := offline(f)
	f.Add(kustomizeRepo["overlays/prod/kustomization.yaml"])
	f.Add(kustomizeRepo["base/kustomization.yaml"])
	for _, s := range []string{
		"resources: [deploy.yaml, cm.yaml]\nnamespace: x\nnameSuffix: -v1\nlabels: [{pairs: {a: b}, includeSelectors: true}]\n",
		"resources: [../base]\nreplicas: [{name: web, count: 2}]\npatches: [{patch: '[{\"op\": \"remove\", \"path\": \"/spec/replicas\"}]', target: {kind: Deployment}}]\n",
		"resources: [deploy.yaml]\npatches:\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: web}\n    spec: {replicas: 5}\n",
		"resources: [deploy.yaml]\nsecretGenerator: [{name: s, files: [cm.yaml], type: Opaque}]\ngeneratorOptions: {disableNameSuffixHash: true}\n",
		"resources: [https://example.com/x.yaml]\n",
		"resources: [git::https://example.com/repo//base]\n",
		"components: [../../outside]\n",
		"transformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: p}\n  path: !!binary aHR0cHM6Ly9leGFtcGxlLmNvbS8=\n",
		"helmCharts: [{name: x}]\n",
		"openapi: {path: cm.yaml}\nresources: [deploy.yaml]\n",
		"resources: &a [deploy.yaml, *a]\n",
		"kind: Component\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if err := os.WriteFile(filepath.Join(dir, "app", "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		res := Load([]string{"."}, WithBase(dir))
		for _, d := range res.Diagnostics {
			if d.File == "" || filepath.IsAbs(d.File) || strings.HasPrefix(d.File, "..") || d.Line < 1 || d.Column < 1 || d.Message == "" {
				t.Fatalf("diagnostic without a proper position or message: %#v", d)
			}
		}
		for _, l := range res.Objects {
			if !json.Valid(l.JSON) || bytes.Contains(l.JSON, []byte("config.kubernetes.io/origin")) {
				t.Fatalf("object %s: %s", l.ID(), l.JSON)
			}
		}
		fetched()
	})
}
