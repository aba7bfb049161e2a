package schemas

import (
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
