package schemas

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// appendJSON and fillFrom stand in for json.Marshal and json.Unmarshal on
// the checker's values; these tests hold them to encoding/json on every
// value the checker produces for the seed documents and their mutations.

func checkedValue(t *testing.T, src string) (any, string, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil || len(doc.Content) == 0 {
		return nil, "", false
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, "", false
	}
	kind := mapGet(root, "kind")
	if kind == nil {
		return nil, "", false
	}
	ks, ok := kindSchemas[kind.Value]
	if !ok {
		return nil, "", false
	}
	schemas, err := schemaSet()
	if err != nil {
		t.Fatal(err)
	}
	c := newChecker("doc.yaml")
	v := c.value(schemas[ks.def], root, nil)
	return v, kind.Value, len(c.diags) == 0
}

// sameAsEncodingJSON checks appendJSON and fillFrom on one value, and
// reports whether fillFrom took its fast path.
func sameAsEncodingJSON(t *testing.T, v any, kind, src string) bool {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, err := appendJSON(nil, v)
	if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("appendJSON = %s, %v; json.Marshal = %s, %v\n%s", got, err, want, wantErr, src)
	}
	if wantErr != nil || kind == "" {
		return false
	}
	wantObj, gotObj := newObject(kind), newObject(kind)
	if json.Unmarshal(want, wantObj) != nil {
		// Declining is the only right answer; the loader reports the error.
		if fillFrom(gotObj, v) {
			t.Fatalf("fillFrom accepts what json.Unmarshal rejects: %s", want)
		}
		return false
	}
	if !fillFrom(gotObj, v) {
		return false
	}
	if !reflect.DeepEqual(gotObj, wantObj) {
		t.Fatalf("fillFrom = %#v\njson.Unmarshal = %#v\n%s", gotObj, wantObj, src)
	}
	return true
}

func TestJSONValueAgreesWithEncodingJSON(t *testing.T) {
	valid := 0
	for _, seed := range seedDocuments(t) {
		v, kind, ok := checkedValue(t, seed)
		if fast := sameAsEncodingJSON(t, v, kind, seed); ok && !fast {
			// Valid objects must not need the slow path, or the loader
			// silently loses what this fast path is for.
			t.Errorf("fillFrom declined a valid object:\n%s", seed)
		}
		if ok {
			valid++
		}
		for _, m := range mutations(t, seed) {
			// Rejected documents still leave a value: it exercises more
			// shapes (nulls, floats, wrong kinds).
			if v, kind, _ := checkedValue(t, m); v != nil {
				sameAsEncodingJSON(t, v, kind, m)
			}
		}
	}
	if valid < 5 {
		t.Errorf("only %d seed documents are valid objects", valid)
	}
}

func TestAppendJSONStrings(t *testing.T) {
	for _, s := range []string{"", "plain", `quo"te`, `back\slash`, "<html>&", "tab\there", "nl\n", "\x00\x1f\x7f",
		"é", "日本", "\u2028\u2029", "\xff", "a\xc3", "emoji 🙂"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
	for _, v := range []any{1.5, 1e21, 1e-7, -0.0, 3.0, int64(-9223372036854775808), true, nil, []any{}, map[string]any{}, []any{nil, "x"}} {
		want, _ := json.Marshal(v)
		if got, _ := appendJSON(nil, v); !bytes.Equal(got, want) {
			t.Errorf("appendJSON(%#v) = %s, want %s", v, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("a<b")
	f.Add("\xed\xa0\x80")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(map[string]any{s: s})
		if got, _ := appendJSON(nil, map[string]any{s: s}); !bytes.Equal(got, want) {
			t.Errorf("appendJSON(%q) = %s, want %s", s, got, want)
		}
	})
}
