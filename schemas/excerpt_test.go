package schemas

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExcerpt(t *testing.T) {
	for in, want := range map[string]string{
		"web":                            `"web"`,
		"a\nb\x1b[31m":                   `"a\nb\x1b[31m"`,
		strings.Repeat("x", 40):          `"` + strings.Repeat("x", 40) + `"`,
		strings.Repeat("é", 41):          `"` + strings.Repeat("é", 40) + `"...`,
		"\xff" + strings.Repeat("y", 45): `"\xff` + strings.Repeat("y", 39) + `"...`,
	} {
		if got := Excerpt(in); got != want {
			t.Errorf("Excerpt(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"replicas": "replicas", "app.kubernetes.io/name": "app.kubernetes.io/name", "a b": "a b",
		"": `""`, "a\tb": `"a\tb"`, `say "hi"`: `"say \"hi\""`, strings.Repeat("k", 41): `"` + strings.Repeat("k", 40) + `"...`} {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %s, want %s", in, got, want)
		}
	}
}

// secretLines stand for what a link to a host file, or a file holding a
// credential by mistake, would put in front of the checker.
var secretLines = []string{
	"root:$6$Zb0mPq1x$8yQk3lT7vR2nW9cJ4hF6dS1aE5gU0iO3pL7mK2jH9bV4cX6zN8qW1eR5tY3uI7oP0aS2dF4gH6jK8lZ:19700:0:99999:7:::",
	"daemon:*:19700:0:99999:7:::Qm9vdHN0cmFwIHRva2VuIGZvciB0aGUgY2x1c3Rlcg",
	"bt1.4f9c2e7a81d35b60c9e4f1a27d8b3c56e0f9a4b1c7d2e8f3a6b9c0d5e1f4a7b2c8d3",
}

// Whatever part of a file a secret ends up in, a diagnostic shows at most
// an excerpt of it: never a run of it longer than the excerpt.
func TestDiagnosticsQuoteOnlyExcerpts(t *testing.T) {
	s0, s1, s2 := secretLines[0], secretLines[1], secretLines[2]
	files := map[string]string{
		"shadow.yaml":  strings.Join(secretLines, "\n") + "\n",
		"token.yaml":   s2 + "\n",
		"key.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  \"" + s0 + "\": x\n",
		"field.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n\"" + s1 + "\": x\n",
		"int.yaml":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: c}\nspec:\n  replicas: !!int \"" + s2 + "\"\n",
		"float.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata: {k: !!float \"" + s1 + "\"}\n",
		"bool.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: e}\ndata: {k: !!bool \"" + s0 + "\"}\n",
		"tag.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: f}\ndata: {k: !" + strings.ReplaceAll(s2, ".", "") + " v}\n",
		"anchor.yaml":  "a: *" + strings.ReplaceAll(s2, ".", "") + "\n",
		"name.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"" + s0 + "\"\n  namespace: \"" + s1 + "\"\n",
		"dup.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"" + s0 + "\"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"" + s0 + "\"}\n",
		"kind.yaml":    "apiVersion: v1\nkind: \"" + s1 + "\"\n",
		"api.yaml":     "apiVersion: \"" + s2 + "\"\nkind: Deployment\n",
		"value.yaml":   "apiVersion: v1\nkind: Service\nmetadata: {name: g}\nspec: {type: \"" + s0 + "\"}\n",
		"flow.yaml":    "a: [" + s1 + "\n",
		"bad.json":     "{\"" + s0 + "\" " + s1 + "}",
		"c/a.cue":      "package c\nx: \"" + s0 + "\" & \"" + s1 + "\"\n",
		"d/a.cue":      "package d\nimport \"" + s2 + ".example/x\"\n",
		"e/a.cue":      "package e\ncm: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"h\", data: \"" + strings.ReplaceAll(s0, "$", "") + "\": 1}\n",
		"f/a.cue":      "package f\n\"" + s1 + "\": {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: string}\n",
		"refs.yaml":    strings.Replace(deployYAML, "          ports:", "          env:\n            - name: A\n              valueFrom:\n                configMapKeyRef: {name: cfg, key: \""+strings.Repeat("k", 200)+"\"}\n          ports:", 1),
		"refs-cm.yaml": cmYAML,
	}
	res := loadRepo(t, files)
	if len(res.Diagnostics) < len(files)-2 {
		t.Fatalf("only %d diagnostics for %d bad files: %v", len(res.Diagnostics), len(files), res.Diagnostics)
	}
	secrets := append(secretLines, strings.Repeat("k", 200), strings.ReplaceAll(s2, ".", ""), strings.ReplaceAll(s0, "$", ""))
	for _, d := range res.Diagnostics {
		texts := []string{d.Message, d.Object}
		for _, r := range d.Related {
			texts = append(texts, r.Message)
		}
		for _, text := range texts {
			if s := longestRun(text, secrets); s > excerptRunes {
				t.Errorf("%s quotes %d runes of a secret: %s", d.Position, s, text)
			}
			if strings.ContainsAny(text, "\n\x1b") {
				t.Errorf("%s: unescaped control character in %q", d.Position, text)
			}
		}
	}
}

// longestRun is the length in runes of the longest run of any secret that
// text holds.
func longestRun(text string, secrets []string) int {
	best := 0
	for _, s := range secrets {
		rs := []rune(s)
		for i := range rs {
			for j := len(rs); j > i+best; j-- {
				if strings.Contains(text, string(rs[i:j])) {
					best = max(best, utf8.RuneCountInString(string(rs[i:j])))
					break
				}
			}
		}
	}
	return best
}
