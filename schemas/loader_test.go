package schemas

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

// writeRepo lays out files (path -> content) under a fresh directory.
func writeRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadRepo(t testing.TB, files map[string]string, opts ...Option) *Result {
	t.Helper()
	dir := writeRepo(t, files)
	return Load([]string{"."}, append([]Option{WithBase(dir)}, opts...)...)
}

// want is one expected diagnostic: "file:line:col: severity: substring".
func assertDiags(t *testing.T, res *Result, want ...string) {
	t.Helper()
	var got []string
	for _, d := range res.Diagnostics {
		got = append(got, d.String())
	}
	for _, w := range want {
		prefix, sub, _ := strings.Cut(w, ": ")
		sev, sub, _ := strings.Cut(sub, ": ")
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, prefix+": "+sev+": ") && strings.Contains(g, sub) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing diagnostic %q\ngot:\n  %s", w, strings.Join(got, "\n  "))
		}
	}
	if len(got) != len(want) {
		t.Errorf("want %d diagnostics, got %d:\n  %s", len(want), len(got), strings.Join(got, "\n  "))
	}
}

const cmYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  key: value
`

const deployYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: example/web:1
          ports:
            - name: http
              containerPort: 8080
`

func TestExamplesAreValid(t *testing.T) {
	for _, ex := range []struct {
		dir     string
		objects int
	}{{"hello", 4}, {"cue-app", 7}, {"shop", 11}} {
		res := Load([]string{filepath.Join("..", "examples", ex.dir)})
		if len(res.Diagnostics) != 0 {
			t.Errorf("%s: %v", ex.dir, res.Diagnostics)
		}
		if len(res.Objects) != ex.objects {
			t.Errorf("%s: %d objects, want %d", ex.dir, len(res.Objects), ex.objects)
		}
	}
}

func TestDefaultsAreKubernetes(t *testing.T) {
	res := loadRepo(t, map[string]string{"d.yaml": deployYAML + "---\n" + `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
`})
	assertDiags(t, res)
	d := res.Objects[0].Object.(*objects.Deployment)
	if d.Metadata.Namespace != "default" || d.Spec.Replicas != 1 || d.Spec.RevisionHistoryLimit != 10 ||
		d.Spec.Strategy.Type != "RollingUpdate" || d.Spec.Strategy.RollingUpdate.MaxSurge.String() != "25%" ||
		d.Spec.Strategy.RollingUpdate.MaxUnavailable.String() != "25%" || d.Spec.Template.Spec.Containers[0].Ports[0].Protocol != "TCP" ||
		d.Spec.Template.Spec.TerminationGracePeriodSeconds != 30 {
		t.Errorf("deployment defaults: %+v", d)
	}
	s := res.Objects[1].Object.(*objects.Service)
	if s.Spec.Type != "ClusterIP" || s.Spec.Ports[0].Protocol != "TCP" || s.Metadata.Namespace != "default" {
		t.Errorf("service defaults: %+v", s.Spec)
	}
	var m map[string]any
	if err := json.Unmarshal(res.Objects[0].JSON, &m); err != nil || m["spec"].(map[string]any)["replicas"] != 1.0 {
		t.Errorf("canonical JSON lacks defaults: %s", res.Objects[0].JSON)
	}
}

func TestRecreateStrategyForbidsRollingUpdate(t *testing.T) {
	res := loadRepo(t, map[string]string{"d.yaml": strings.Replace(deployYAML, "spec:\n  selector:", "spec:\n  strategy:\n    type: Recreate\n    rollingUpdate: {maxSurge: 1}\n  selector:", 1)})
	assertDiags(t, res, "d.yaml:8:5: error: spec.strategy.rollingUpdate: field not allowed here: only when type is \"RollingUpdate\"")
}

func TestBadInput(t *testing.T) {
	// A "billion laughs" the schema walks: aliased containers, each with a
	// list of aliased env entries; 8 KB of YAML that expands to millions of nodes.
	bomb := strings.Replace(deployYAML, "          ports:\n            - name: http\n              containerPort: 8080\n",
		"          env: [&e {name: A, value: b}"+strings.Repeat(", *e", 1000)+"]\n"+strings.Repeat("        - *c\n", 1000), 1)
	bomb = strings.Replace(bomb, "        - name: web", "        - &c\n          name: web", 1)
	cases := []struct {
		name  string
		files map[string]string
		opts  []Option
		want  []string
	}{
		{"malformed YAML", map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: name: x\n"},
			nil, []string{"a.yaml:3:11: error: invalid YAML: mapping value is not allowed"}},
		{"unterminated YAML flow", map[string]string{"a.yaml": "apiVersion: v1\nkind: [ConfigMap\n"},
			nil, []string{"a.yaml:2:7: error: invalid YAML"}},
		{"malformed JSON", map[string]string{"a.json": "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n}\n"},
			nil, []string{"a.json:4:1: error: invalid JSON: invalid character '}'"}},
		{"truncated JSON", map[string]string{"a.json": "{\"apiVersion\": \"v1\""},
			nil, []string{"a.json:1:20: error: invalid JSON: unexpected end of JSON input"}},
		{"malformed CUE", map[string]string{"c/a.cue": "package x\n\nfoo: {\n  bar: 1,,\n}\n"},
			nil, []string{"c/a.cue:4:10: error: expected operand, found ','"}},
		{"wrong type", map[string]string{"d.yaml": strings.Replace(deployYAML, "spec:\n  selector", "spec:\n  replicas: three\n  selector", 1)},
			nil, []string{`d.yaml:6:13: error: spec.replicas: got "three", want int & >=0`}},
		{"wrong nested type", map[string]string{"d.yaml": strings.Replace(deployYAML, "containerPort: 8080", "containerPort: [8080]", 1)},
			nil, []string{"d.yaml:17:30: error: spec.template.spec.containers[0].ports[0].containerPort: got a list, want #PortNumber"}},
		{"invalid name", map[string]string{"c.yaml": strings.Replace(cmYAML, "name: cfg", "name: Cfg_1", 1)},
			nil, []string{`c.yaml:4:9: error: metadata.name: invalid value "Cfg_1": want #DNSSubdomain`}},
		{"unknown field with suggestion", map[string]string{"d.yaml": strings.Replace(deployYAML, "spec:\n  selector", "spec:\n  replica: 2\n  selector", 1)},
			nil, []string{`d.yaml:6:3: error: spec.replica: berth does not support this field (did you mean "replicas"?)`}},
		{"missing required field", map[string]string{"d.yaml": strings.Replace(deployYAML, "          image: example/web:1\n", "", 1)},
			nil, []string{`d.yaml:13:11: error: spec.template.spec.containers[0]: missing required field "image"`}},
		{"YAML alias bomb", map[string]string{"bomb.yaml": bomb},
			nil, []string{"bomb.yaml:16:", "document expands to more than 200000 nodes"}},
		{"file over the size limit", map[string]string{"big.yaml": cmYAML + "# " + strings.Repeat("x", 200) + "\n"},
			[]Option{WithMaxFileBytes(100)}, []string{"big.yaml:1:1: error: file is larger than the limit of 100 bytes"}},
		{"binary file", map[string]string{"bin.yaml": "apiVersion: v1\nkind: \x00\x01\x02"},
			nil, []string{"bin.yaml:2:7: error: file holds a NUL byte"}},
		{"non-UTF-8 file", map[string]string{"latin1.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n"},
			nil, []string{"latin1.yaml:3:21: error: file is not valid UTF-8 (byte 0xe9)"}},
		{"deep YAML nesting", map[string]string{"deep.yaml": strings.Repeat("[", 20000)},
			nil, []string{"deep.yaml:1:1: error: invalid YAML: exceeded max depth of 10000"}},
		{"deep JSON nesting", map[string]string{"deep.json": strings.Repeat("[", 20000)},
			nil, []string{"deep.json:1:10001: error: invalid JSON: invalid character '[' exceeded max depth"}},
		{"deep CUE nesting", map[string]string{"c/deep.cue": "package x\na: " + strings.Repeat("{b: ", 100) + "1" + strings.Repeat("}", 100) + "\n"},
			nil, []string{"c/deep.cue:2:", "error: a.b.b.b"}},
		{"CUE never concrete", map[string]string{"c/a.cue": "package x\ncm: {\n\tapiVersion: \"v1\"\n\tkind: \"ConfigMap\"\n\tmetadata: name: string\n}\n"},
			nil, []string{"c/a.cue:5:18: error: cm.metadata.name: incomplete value string"}},
		{"CUE cycle", map[string]string{"c/a.cue": "package x\ncm: {\n\tapiVersion: \"v1\"\n\tkind: \"ConfigMap\"\n\tmetadata: name: cm.metadata.name\n}\n"},
			nil, []string{"c/a.cue:5:12: error: cm.metadata.name: incomplete value _"}},
		{"CUE embeds no file", map[string]string{"c/a.cue": "@extern(embed)\npackage x\ncm: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"x\", data: k: _ @embed(file=\"/etc/hostname\", type=text)}\n"},
			nil, []string{"c/a.cue:1:1: error: cannot embed files when not in a module"}},
		{"CUE conflict", map[string]string{"c/a.cue": "package x\nx: 1\nx: 2\n"},
			nil, []string{"c/a.cue:3:4: error: x: conflicting values 2 and 1"}},
		{"CUE object fails its schema", map[string]string{"c/a.cue": "package x\ncm: {\n\tapiVersion: \"v1\"\n\tkind: \"ConfigMap\"\n\tmetadata: name: \"cfg\"\n\tdata: k: 3\n}\n"},
			nil, []string{"c/a.cue:6:8: error: data.k: got int 3, want string"}},
		{"empty document", map[string]string{"a.yaml": cmYAML + "---\n---\n" + strings.Replace(cmYAML, "cfg", "cfg2", 1)},
			nil, []string{"a.yaml:8:1: warning: empty document"}},
		{"empty file", map[string]string{"a.yaml": "# nothing here\n", "b.yaml": cmYAML},
			nil, []string{"a.yaml:1:1: warning: file holds no documents"}},
		{"document is a list", map[string]string{"a.yaml": "- apiVersion: v1\n  kind: ConfigMap\n"},
			nil, []string{"a.yaml:1:1: error: document is a list, not an object"}},
		{"document is a scalar", map[string]string{"a.yaml": "hello\n"},
			nil, []string{`a.yaml:1:1: error: document is "hello", not an object`}},
		{"no kind", map[string]string{"a.yaml": "apiVersion: v1\nmetadata: {name: x}\n"},
			nil, []string{"a.yaml:1:1: error: object has no kind"}},
		{"unsupported kind", map[string]string{"a.yaml": "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: x}\n"},
			nil, []string{`a.yaml:2:7: error: berth does not support "apps/v1 ReplicaSet" (it runs apps/v1 DaemonSet, apps/v1 Deployment, apps/v1 StatefulSet, batch/v1 CronJob, batch/v1 Job, v1 ConfigMap`}},
		{"wrong apiVersion", map[string]string{"a.yaml": strings.Replace(deployYAML, "apps/v1", "extensions/v1beta1", 1)},
			nil, []string{`a.yaml:1:13: error: Deployment is served as apiVersion "apps/v1", not "extensions/v1beta1"`}},
		{"duplicate key", map[string]string{"a.yaml": cmYAML + "data:\n  x: y\n"},
			nil, []string{"a.yaml:7:1: error: data: field is set twice; first at line 5"}},
		{"duplicate key in a large mapping", map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n" +
			bigData(20) + "  k3: again\n"},
			nil, []string{"a.yaml:25:3: error: data.k3: field is set twice; first at line 8"}},
		{"unsupported YAML tag", map[string]string{"a.yaml": strings.Replace(cmYAML, "value", "!vault value", 1)},
			nil, []string{"a.yaml:6:8: error: data.key: unsupported YAML tag !vault"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := loadRepo(t, tc.files, tc.opts...)
			if strings.HasSuffix(tc.want[0], ":") { // position prefix and message checked apart
				if len(res.Diagnostics) != 1 || !strings.HasPrefix(res.Diagnostics[0].String(), tc.want[0]) || !strings.Contains(res.Diagnostics[0].String(), tc.want[1]) {
					t.Errorf("want one diagnostic %q...%q, got %v", tc.want[0], tc.want[1], res.Diagnostics)
				}
				return
			}
			assertDiags(t, res, tc.want...)
		})
	}
}

// bigData is n mapping entries k0: v .. k<n-1>: v, indented under data.
func bigData(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	return b.String()
}

// fakeToken stands for DATA/master/join-master.token, outside the repository.
const fakeToken = "bt1.9d4e2f7a0c1b3e5d7f9a2c4e6b8d0f1a3c5e7b9d"

// Symlinks of every shape: those that leave the repository are errors at
// their own path, whatever they are named and wherever they are, and
// nothing of their targets reaches a diagnostic; those that stay inside
// are read like their targets.
func TestSymlinks(t *testing.T) {
	outside := writeRepo(t, map[string]string{"token": fakeToken + "\n", "secret.yaml": "apiVersion: v1\nkind: \"" + fakeToken + "\"\n", "secret.cue": "package c\nx: \"" + fakeToken + "\"\n"})
	dir := writeRepo(t, map[string]string{
		"ok.yaml":       strings.Replace(cmYAML, "cfg", "ok", 1),
		"data.txt":      strings.Replace(cmYAML, "cfg", "via-txt", 1),
		"c/a.cue":       "package c\ncm: {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"from-cue\"}\n",
		"legacy/x.yaml": "broken: [",
		"sub/ns.yaml":   "apiVersion: v1\nkind: Namespace\nmetadata: {name: sub}\n",
		"berth.yaml":    "exclude: [\"legacy/**\"]\n",
	})
	links := map[string]string{
		"abs.yaml":        filepath.Join(outside, "secret.yaml"), // absolute
		"up.yaml":         "../" + filepath.Base(outside) + "/secret.yaml",
		"deep/up.yaml":    "../../../../../../../../../../../../etc/passwd", // .. beyond the root
		"chain.yaml":      "hop1",                                           // a chain that leaves on its last hop
		"hop1":            "sub/hop2",
		"sub/hop2":        filepath.Join(outside, "token"),
		"outdir":          outside, // a directory outside, not a spec name
		"c/b.cue":         filepath.Join(outside, "secret.cue"),
		"README.md":       filepath.Join(outside, "token"), // never read as a spec, refused all the same
		"legacy/out.yaml": filepath.Join(outside, "token"), // in an excluded directory, refused all the same
		"inside.yaml":     "ok.yaml",
		"txt.yaml":        "data.txt",
		"subdir":          "sub", // a directory inside: not followed
		"gone.yaml":       "nothing-here.yaml",
	}
	for l, target := range links {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, l)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	res := Load([]string{"."}, WithBase(dir))
	const out = "error: symlink to "
	assertDiags(t, res,
		"abs.yaml:1:1: "+out, "up.yaml:1:1: "+out, "deep/up.yaml:1:1: "+out,
		"chain.yaml:1:1: "+out, "hop1:1:1: "+out, "sub/hop2:1:1: "+out,
		"outdir:1:1: "+out, "c/b.cue:1:1: "+out, "README.md:1:1: "+out, "legacy/out.yaml:1:1: "+out,
		"ok.yaml:4:9: error: ConfigMap default/ok is defined twice; first at inside.yaml:4:9",
		"gone.yaml:1:1: error: broken symlink: no such file or directory",
	)
	for _, d := range res.Diagnostics {
		if strings.Contains(d.Message, "bt1.9d4e") || strings.Contains(d.Message, "root:") {
			t.Errorf("%s quotes the target's content", d)
		}
		if strings.HasPrefix(d.Message, "symlink to") && !strings.HasSuffix(d.Message, "points outside the repository; refusing to read it") {
			t.Errorf("%s: wording", d)
		}
	}
	for _, d := range res.Diagnostics {
		if d.File == "abs.yaml" && d.Message != OutsideLinkMessage(filepath.Join(outside, "secret.yaml")) {
			t.Errorf("abs.yaml: %s", d.Message)
		}
	}
	var names []string
	for _, o := range res.Objects {
		names = append(names, o.ID().Name)
	}
	if strings.Join(names, " ") != "from-cue ok ok sub via-txt" {
		t.Errorf("objects %v", names)
	}

	// berth.yaml itself as a link out: nothing is read, the error is at it.
	if err := os.Remove(filepath.Join(dir, "berth.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "token"), filepath.Join(dir, "berth.yaml")); err != nil {
		t.Fatal(err)
	}
	res = Load([]string{"."}, WithBase(dir))
	assertDiags(t, res, "berth.yaml:1:1: "+out)
	if len(res.Objects) != 0 || len(res.Files) != 0 {
		t.Errorf("read past a refused berth.yaml: %v", res.Files)
	}
	// ... and as a link inside, it is read.
	os.Remove(filepath.Join(dir, "berth.yaml"))
	os.WriteFile(filepath.Join(dir, "conf.txt"), []byte("include: [\"sub/**\"]\n"), 0o644)
	os.Symlink("conf.txt", filepath.Join(dir, "berth.yaml"))
	res = Load([]string{"."}, WithBase(dir))
	if len(res.Objects) != 1 || res.Objects[0].ID().Name != "sub" {
		t.Errorf("berth.yaml as a link inside: objects %v, diagnostics %v", res.Objects, res.Diagnostics)
	}
}

// The read itself goes through the gate: a link that leaves the root is
// refused at the moment of reading, whatever the walk saw before.
func TestReadIsGated(t *testing.T) {
	outside := writeRepo(t, map[string]string{"token": fakeToken})
	dir := writeRepo(t, map[string]string{"x.yaml": cmYAML})
	g, err := openGate(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.root.Close()
	os.Remove(filepath.Join(dir, "x.yaml"))
	os.Symlink(filepath.Join(outside, "token"), filepath.Join(dir, "x.yaml"))
	b, d := readFile(&options{maxFileBytes: DefaultMaxFileBytes}, g, "x.yaml", "x.yaml")
	if b != nil || d == nil || !strings.HasPrefix(d.String(), "x.yaml:1:1: error: symlink to ") {
		t.Fatalf("read %q, %v", b, d)
	}
}

func TestChecksBeyondSchema(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"duplicate across files", map[string]string{"a.yaml": cmYAML, "b/c.yaml": cmYAML},
			[]string{"b/c.yaml:4:9: error: ConfigMap default/cfg is defined twice; first at a.yaml:4:9"}},
		{"selector does not match template", map[string]string{"d.yaml": strings.Replace(deployYAML, "matchLabels: {app: web}", "matchLabels: {app: api}", 1)},
			[]string{"d.yaml:7:5: error: spec.selector: does not match the pod template's labels (spec.template.metadata.labels {app=web})"}},
		{"missing ConfigMap", map[string]string{"d.yaml": strings.Replace(deployYAML, "          ports:", "          env:\n            - name: A\n              valueFrom:\n                configMapKeyRef: {name: nope, key: k}\n          ports:", 1)},
			[]string{`d.yaml:18:41: warning: ConfigMap "nope" is not defined in namespace "default": the pods wait until it is`}},
		{"missing key", map[string]string{"c.yaml": cmYAML, "d.yaml": strings.Replace(deployYAML, "          ports:", "          env:\n            - name: A\n              valueFrom:\n                configMapKeyRef: {name: cfg, key: nokey}\n          ports:", 1)},
			[]string{`d.yaml:18:41: error: ConfigMap "cfg" has no key "nokey"`}},
		{"optional reference may be missing", map[string]string{"d.yaml": strings.Replace(deployYAML, "          ports:", "          env:\n            - name: A\n              valueFrom:\n                secretKeyRef: {name: nope, key: k, optional: true}\n          ports:", 1)},
			nil},
		{"missing Secret volume", map[string]string{"d.yaml": deployYAML + "      volumes:\n        - name: s\n          secret: {secretName: creds}\n"},
			[]string{`d.yaml:20:32: warning: Secret "creds" is not defined in namespace "default": the pods wait until it is`}},
		{"port names unique", map[string]string{"d.yaml": deployYAML + "        - name: side\n          image: example/side:1\n          ports:\n            - name: http\n              containerPort: 9090\n"},
			[]string{`d.yaml:21:21: error: spec.template.spec.containers[1].ports[0].name: port name "http" is already used by container "web"`}},
		{"unknown targetPort name", map[string]string{"d.yaml": deployYAML, "s.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports:\n    - port: 80\n      targetPort: metrics\n"},
			[]string{`s.yaml:8:19: warning: targetPort "metrics" is not a named port of any container this Service selects`}},
		{"probe on unknown port", map[string]string{"d.yaml": deployYAML + "          readinessProbe:\n            httpGet: {port: admin}\n"},
			[]string{`d.yaml:19:29: error: spec.template.spec.containers[0].readinessProbe.httpGet.port: this container has no port named "admin"`}},
		{"mount of undeclared volume", map[string]string{"d.yaml": deployYAML + "          volumeMounts:\n            - {name: data, mountPath: /data}\n"},
			[]string{`d.yaml:19:22: error: spec.template.spec.containers[0].volumeMounts[0].name: no volume named "data"`}},
		{"undefined namespace", map[string]string{"c.yaml": strings.Replace(cmYAML, "name: cfg", "name: cfg\n  namespace: team-a", 1)},
			[]string{`c.yaml:4:9: warning: namespace "team-a" is not defined in the repository`}},
		{"service selects nothing", map[string]string{"s.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n"},
			[]string{`s.yaml:5:13: warning: spec.selector {app=web} matches no Deployment's pods`}},
		{"both surge and unavailable zero", map[string]string{"d.yaml": strings.Replace(deployYAML, "spec:\n  selector:", "spec:\n  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: 0%}\n  selector:", 1)},
			[]string{"d.yaml:7:20: error: spec.strategy.rollingUpdate: maxSurge and maxUnavailable cannot both be 0"}},
		{"a broken Deployment does not make its Service warn", map[string]string{"d.yaml": strings.Replace(deployYAML, "          image: example/web:1", "          image: 3", 1), "s.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: http}]\n"},
			[]string{"d.yaml:14:18: error: spec.template.spec.containers[0].image: got int 3, want string & !=\"\""}},
		{"a schema error does not cascade", map[string]string{"c.yaml": strings.Replace(cmYAML, "key: value", "key: 1", 1), "d.yaml": strings.Replace(deployYAML, "          ports:", "          env:\n            - name: A\n              valueFrom:\n                configMapKeyRef: {name: cfg, key: other}\n          ports:", 1)},
			[]string{"c.yaml:6:8: error: data.key: got int 1, want string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertDiags(t, loadRepo(t, tc.files), tc.want...)
		})
	}
}

func TestRepoConfig(t *testing.T) {
	files := map[string]string{
		"berth.yaml":          "include: [\"apps/**\"]\nexclude: [\"apps/legacy/**\"]\nignoreKinds: [Kustomization]\n",
		"apps/cm.yaml":        cmYAML,
		"apps/kust.yaml":      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
		"apps/legacy/x.yaml":  "not: [valid",
		"charts/values.yaml":  "replicaCount: 1\n",
		".git/config.yaml":    "broken: [",
		"apps/notes/skip.txt": "ignored",
	}
	res := loadRepo(t, files)
	assertDiags(t, res)
	if len(res.Objects) != 1 || len(res.Files) != 2 {
		t.Errorf("objects %d files %v", len(res.Objects), res.Files)
	}
	files["berth.yaml"] = "include: [\"apps/**\"]\nexlude: [x]\n"
	assertDiags(t, loadRepo(t, files), `berth.yaml:2:1: error: berth.yaml: exlude: unknown field (did you mean "exclude"?)`)
	files["berth.yaml"] = "include: ['apps/**', 'x[']\n"
	assertDiags(t, loadRepo(t, files), `berth.yaml:1:22: error: berth.yaml: invalid glob "x["`)
}

// Entries of berth.yaml that match nothing are warnings at their own line.
func TestRepoConfigUnusedEntries(t *testing.T) {
	res := loadRepo(t, map[string]string{
		"berth.yaml": "include:\n  - \"apps/**\"\n  - \"aps/**\"\nexclude:\n  - \"apps/old/**\"\n  - \"apps/legacy/**\"\n" +
			"ignoreKinds: [Kustomization, HelmRelease]\n",
		"apps/cm.yaml":       cmYAML,
		"apps/kust.yaml":     "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
		"apps/legacy/x.yaml": "not: [valid",
	})
	assertDiags(t, res,
		`berth.yaml:3:5: warning: berth.yaml: include "aps/**" matches no file the loader reads`,
		`berth.yaml:5:5: warning: berth.yaml: exclude "apps/old/**" matches no file or directory`,
		`berth.yaml:7:30: warning: berth.yaml: ignoreKinds "HelmRelease": no document has this kind`)
}

// A repository without objects is refused unless berth.yaml allows it:
// applying it would remove every object from the cluster.
func TestEmptyRepository(t *testing.T) {
	const msg = "error: no objects: applying this would remove every object from the cluster; if that is intended, set allowEmpty: true in berth.yaml"
	assertDiags(t, loadRepo(t, map[string]string{"README.md": "# nothing yet\n"}), ".:1:1: "+msg)
	assertDiags(t, loadRepo(t, map[string]string{"berth.yaml": "include: [\"apps/**\"]\n", "app.yaml": cmYAML}),
		"berth.yaml:1:1: "+msg, `berth.yaml:1:11: warning: berth.yaml: include "apps/**" matches no file the loader reads`)
	assertDiags(t, loadRepo(t, map[string]string{"berth.yaml": "ignoreKinds: [ConfigMap]\n", "app.yaml": cmYAML}), "berth.yaml:1:1: "+msg)
	assertDiags(t, loadRepo(t, map[string]string{"berth.yaml": "allowEmpty: true\n"}))
	assertDiags(t, loadRepo(t, map[string]string{"berth.yaml": "allowEmpty: yes please\n"}),
		`berth.yaml:1:13: error: berth.yaml: allowEmpty: got "yes please", want bool`)
	// Objects that fail are errors already; they are not missing.
	assertDiags(t, loadRepo(t, map[string]string{"a.yaml": "kind: ["}), "a.yaml:1:7: error: invalid YAML")
	// The directory a master loads is named as given.
	dir := writeRepo(t, map[string]string{"deploy/README.md": "x"})
	assertDiags(t, Load([]string{"deploy"}, WithBase(dir)), "deploy:1:1: "+msg)
}

func TestUnreadablePath(t *testing.T) {
	res := Load([]string{"does-not-exist"})
	assertDiags(t, res, "does-not-exist:1:1: error: cannot read: no such file or directory")
}

func TestSingleFileAndPositionsAsGiven(t *testing.T) {
	dir := writeRepo(t, map[string]string{"sub/c.yaml": strings.Replace(cmYAML, "value", "1", 1)})
	res := Load([]string{"sub/c.yaml", "sub"}, WithBase(dir))
	for _, d := range res.Diagnostics {
		if d.File != "sub/c.yaml" {
			t.Errorf("position %s, want it in sub/c.yaml", d.Position)
		}
	}
}

// A pinned ClusterIP must be an IPv4 address, and one Service's only: the
// masters could assign neither, and failed every pass trying.
func TestServiceClusterIPChecks(t *testing.T) {
	svc := func(name, ip string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n  selector: {app: x}\n  clusterIP: %q\n  ports: [{port: 80}]\n", name, ip)
	}
	res := loadRepo(t, map[string]string{
		"a.yaml": svc("a", "10.96.0.50"),
		"b.yaml": svc("b", "10.96.0.50"),
		"c.yaml": svc("c", "300.1.1.1"),
		"d.yaml": svc("d", "10.96.0.51"),
	})
	var errs []diag.Diagnostic // the selectors' warnings aside
	for _, d := range res.Diagnostics {
		if d.Severity == diag.Error {
			errs = append(errs, d)
		}
	}
	res.Diagnostics = errs
	assertDiags(t, res,
		"b.yaml:6:14: error: clusterIP 10.96.0.50 is pinned by Service default/a too",
		"c.yaml:6:14: error: clusterIP \"300.1.1.1\" is not an IPv4 address",
	)
}

// Valid Kubernetes that berth used to refuse: what `kubectl create
// --dry-run=client -o yaml` writes (creationTimestamp: null, status: {},
// resources: {}, strategy: {}), lower-case capabilities, quantities in
// apimachinery's whole grammar, nodePort: 0 and clusterIP: "" as unset, and
// line-wrapped base64 in a Secret.
func TestKubernetesShapesAccepted(t *testing.T) {
	res := loadRepo(t, map[string]string{"app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels: {app: web}
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels: {app: web}
    spec:
      containers:
      - image: nginx
        name: nginx
        resources:
          requests: {cpu: .5, memory: 129e6}
          limits: {cpu: "1.", memory: 1E3}
        securityContext:
          capabilities:
            drop: [all]
            add: [chown, NET_BIND_SERVICE]
status: {}
---
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  name: web
spec:
  clusterIP: ""
  ports:
  - {name: 80-80, port: 80, protocol: TCP, targetPort: 80}
  selector: {app: web}
  type: ClusterIP
status:
  loadBalancer: {}
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  ports: [{port: 80, nodePort: 0}]
  selector: {app: web}
---
apiVersion: v1
kind: Secret
metadata: {name: tls}
data:
  key: |
    aGVsbG8gd29ybGQsIHRoaXMgaXMgYSBsb25nIHZhbHVlIHdyYXBwZWQgYXQgc2l4dHkg
    Y29sdW1ucw==
`})
	for _, d := range res.Diagnostics {
		if d.Severity == diag.Error {
			t.Errorf("%s", d)
		}
	}
	if len(res.Objects) != 4 {
		t.Fatalf("%d objects, want 4", len(res.Objects))
	}
}

// YAML merge keys merge as the API server's decoder merges them (keys
// written win), a merge of something else is an error at the key, and a
// --- ending the file is no document, as kubectl reads it.
func TestYAMLMergeKeysAndTrailingSeparator(t *testing.T) {
	res := loadRepo(t, map[string]string{
		"app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: &labels {app: web, tier: back}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels:
        <<: *labels
        tier: front
    spec:
      containers: [{name: web, image: nginx}]
---
`,
		"bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  <<: [1]\n",
	})
	assertDiags(t, res, "bad.yaml:5:3: error: a merge key (<<) takes a mapping")
	if len(res.Objects) != 1 {
		t.Fatalf("%d objects", len(res.Objects))
	}
	var d objects.Deployment
	if err := json.Unmarshal(res.Objects[0].JSON, &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Metadata.Labels; got["app"] != "web" || got["tier"] != "front" || len(got) != 2 {
		t.Fatalf("template labels %v, want app=web from the anchor and tier=front as written", got)
	}
}

// ignoreKinds applies before apiVersion is required, names a kind alone or
// with its group (or group/version), and a kind-less kustomization.yaml is
// a Kustomization; a kind that only configures an API server says so, and
// how to skip it, in one line.
func TestIgnoreKindsAndAPIServerKinds(t *testing.T) {
	res := loadRepo(t, map[string]string{
		"berth.yaml":         "ignoreKinds: [Kustomization, \"rbac.authorization.k8s.io ClusterRole\", \"monitoring.coreos.com/v1 ServiceMonitor\", Thing]\n",
		"kustomization.yaml": "resources: [app.yaml]\n",
		"app.yaml":           cmYAML,
		"rbac.yaml":          "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n",
		"mon.yaml":           "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\n---\napiVersion: monitoring.coreos.com/v2\nkind: ServiceMonitor\nmetadata: {name: m2}\n",
		"thing.yaml":         "kind: Thing\nmetadata: {name: no-api-version}\n",
	})
	assertDiags(t, res,
		"mon.yaml:6:7: error: berth does not support \"monitoring.coreos.com/v2 ServiceMonitor\"",
		"rbac.yaml:6:7: error: Role configures a Kubernetes API server's access control, which berth does not have; skip it with `ignoreKinds: [\"Role\"]` in berth.yaml",
	)
	if len(res.Objects) != 1 {
		t.Fatalf("%d objects, want the ConfigMap", len(res.Objects))
	}
}

// A file named twice, or named and inside a directory named too, is read
// once: it used to be reported as its own duplicate.
func TestPathsNamedTwiceReadOnce(t *testing.T) {
	dir := writeRepo(t, map[string]string{"a.yaml": cmYAML})
	res := Load([]string{"a.yaml", "./a.yaml", ".", "a.yaml"}, WithBase(dir))
	assertDiags(t, res)
	if len(res.Objects) != 1 {
		t.Fatalf("%d objects, want 1", len(res.Objects))
	}
}

// A missing required field is reported at the key of the mapping that
// lacks it, not at whichever field of that mapping comes first.
func TestMissingFieldAtItsMappingsKey(t *testing.T) {
	res := loadRepo(t, map[string]string{
		"d.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
		"c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: default\n",
	})
	assertDiags(t, res,
		"d.yaml:5:1: error: spec.selector: must not be empty",
		`c.yaml:3:1: error: metadata: missing required field "name"`,
	)
}

// berth.yaml at the repository's root applies when a directory below it is
// validated (in CI, or by masters following a sub-path): its globs are
// relative to the root, and its entries for other directories do not warn.
func TestBerthYAMLFromRootForSubPath(t *testing.T) {
	dir := writeRepo(t, map[string]string{
		".git/HEAD":            "ref: refs/heads/main\n",
		"berth.yaml":           "exclude: [\"apps/legacy/**\", \"other/**\"]\nignoreKinds: [Thing]\n",
		"apps/a.yaml":          cmYAML,
		"apps/thing.yaml":      "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n",
		"apps/legacy/old.yaml": "not: [valid",
		"other/x.yaml":         "not: [valid",
	})
	for _, arg := range []string{"apps", filepath.Join(dir, "apps")} {
		var res *Result
		if filepath.IsAbs(arg) {
			res = Load([]string{arg})
		} else {
			res = Load([]string{arg}, WithBase(dir))
		}
		assertDiags(t, res)
		if len(res.Objects) != 1 || res.Objects[0].Pos.File != filepath.ToSlash(filepath.Join(arg, "a.yaml")) {
			t.Fatalf("%s: %d objects, first at %+v", arg, len(res.Objects), res.Objects)
		}
	}
}

// webContainer is a Deployment whose one container the test goes on to
// write (its fields start on line 12, indented 8).
const webContainer = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
`

// startupProbe is accepted; a liveness or startup probe needs
// successThreshold 1, as Kubernetes validates it.
func TestStartupProbeSchema(t *testing.T) {
	res := loadRepo(t, map[string]string{"d.yaml": webContainer + `        ports: [{name: http, containerPort: 80}]
        startupProbe: {httpGet: {port: http}, failureThreshold: 30, periodSeconds: 2}
        livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}
`})
	assertDiags(t, res, "d.yaml:14:66: error: spec.template.spec.containers[0].livenessProbe.successThreshold: must be 1 for a livenessProbe")
}

// envFrom takes exactly one of configMapRef and secretRef, and a source the
// repository does not define is an error unless optional.
func TestEnvFromSchema(t *testing.T) {
	res := loadRepo(t, map[string]string{"d.yaml": webContainer + `        envFrom:
        - configMapRef: {name: settings}
        - {prefix: DB_, secretRef: {name: creds, optional: true}}
        - {configMapRef: {name: a}, secretRef: {name: b}}
`})
	assertDiags(t, res,
		`d.yaml:13:32: warning: ConfigMap "settings" is not defined in namespace "default": the pods wait until it is`,
		"d.yaml:15:11: error: spec.template.spec.containers[0].envFrom[2]: needs exactly one of configMapRef, secretRef",
	)
}

// Fields generated manifests carry are accepted with the value that says
// what berth does, and other values are refused with why.
func TestGeneratedPodFields(t *testing.T) {
	ok := webContainer + "        terminationMessagePath: /dev/termination-log\n        terminationMessagePolicy: File\n"
	ok = strings.Replace(ok, "    spec:\n", "    spec:\n      dnsPolicy: ClusterFirst\n      schedulerName: default-scheduler\n      enableServiceLinks: false\n", 1)
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": ok}))
	bad := strings.Replace(webContainer, "    spec:\n", "    spec:\n      schedulerName: volcano\n", 1)
	res := loadRepo(t, map[string]string{"d.yaml": bad})
	if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), `spec.template.spec.schedulerName: invalid value "volcano"`) {
		t.Errorf("another scheduler: %v", res.Diagnostics)
	}
}

// The pod's DNS: the four policies, dnsConfig, hostname and subdomain;
// None without a nameserver, and more than three, are errors.
func TestPodDNSSchema(t *testing.T) {
	ok := strings.Replace(webContainer, "    spec:\n", `    spec:
      dnsPolicy: None
      dnsConfig:
        nameservers: [10.0.0.10]
        searches: [corp.example]
        options: [{name: ndots, value: "2"}, {name: edns0}]
      hostname: web-0
      subdomain: peers
      enableServiceLinks: true
`, 1)
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": ok}))
	for policy, want := range map[string]string{
		"dnsPolicy: None": "spec.template.spec.dnsPolicy: None needs at least one nameserver in dnsConfig",
		"dnsPolicy: Default\n      dnsConfig: {nameservers: [1.1.1.1, 1.0.0.1, 8.8.8.8, 8.8.4.4]}": "at most 3 nameservers",
		"dnsPolicy: Cluster": `spec.template.spec.dnsPolicy: berth does not support "Cluster" here; it supports "ClusterFirst", "Default", "None" or "ClusterFirstWithHostNet"`,
		"hostname: Web_0":    "spec.template.spec.hostname",
	} {
		res := loadRepo(t, map[string]string{"d.yaml": strings.Replace(webContainer, "    spec:\n", "    spec:\n      "+policy+"\n", 1)})
		if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), want) {
			t.Errorf("%s: %v, want %q", policy, res.Diagnostics, want)
		}
	}
}

// Extended resources (nvidia.com/gpu) are accepted beside cpu and memory
// and kept in the object; a bare name that is none of them is not.
func TestExtendedResources(t *testing.T) {
	res := loadRepo(t, map[string]string{"d.yaml": webContainer + "        resources:\n          limits: {nvidia.com/gpu: 1, cpu: 500m}\n          requests: {gpu: 1}\n"})
	assertDiags(t, res, `d.yaml:14:22: error: spec.template.spec.containers[0].resources.requests.gpu: berth does not support this field`)
	res = loadRepo(t, map[string]string{"d.yaml": webContainer + "        resources:\n          limits: {nvidia.com/gpu: 1, cpu: 500m}\n"})
	var d objects.Deployment
	if len(res.Objects) != 1 || json.Unmarshal(res.Objects[0].JSON, &d) != nil {
		t.Fatalf("%d objects %v", len(res.Objects), res.Diagnostics)
	}
	if l := d.Spec.Template.Spec.Containers[0].Resources.Limits; l.Extended["nvidia.com/gpu"] != "1" || l.CPU != "500m" {
		t.Fatalf("limits %+v", l)
	}
}

// ServiceAccounts are objects pods may name; "default" exists in every
// namespace; another account must be in the repository, in the pod's
// namespace; no token is mounted, so only automountServiceAccountToken:
// false is accepted.
func TestServiceAccounts(t *testing.T) {
	pod := func(sa string) string {
		return strings.Replace(webContainer, "    spec:\n", "    spec:\n      serviceAccountName: "+sa+"\n", 1)
	}
	res := loadRepo(t, map[string]string{
		"sa.yaml":  "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web}\nautomountServiceAccountToken: false\n",
		"a.yaml":   pod("web"),
		"b.yaml":   strings.Replace(pod("default"), "name: web}", "name: web2}", 1),
		"c.yaml":   strings.Replace(pod("ghost"), "name: web}", "name: web3}", 1),
		"tok.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: tok}\nautomountServiceAccountToken: true\n",
	})
	assertDiags(t, res,
		`c.yaml:9:27: error: ServiceAccount "ghost" is not defined in namespace "default"`,
		`tok.yaml:4:31: error: automountServiceAccountToken: invalid value bool true: want #NoToken (false: berth has no Kubernetes API, so it mounts no service account token)`,
	)
}

// Pod-level securityContext, seccompProfile and allowPrivilegeEscalation
// are accepted; a Localhost profile and a privileged container that may
// not escalate are refused, the latter as Kubernetes refuses it.
func TestSecurityContextFields(t *testing.T) {
	spec := "    spec:\n      securityContext: {runAsUser: 1000, runAsNonRoot: true, supplementalGroups: [3000], seccompProfile: {type: RuntimeDefault}, fsGroup: 2000, fsGroupChangePolicy: OnRootMismatch, sysctls: [{name: net.ipv4.tcp_syncookies, value: \"1\"}]}\n"
	ok := strings.Replace(webContainer, "    spec:\n", spec, 1) + "        securityContext: {allowPrivilegeEscalation: false, seccompProfile: {type: Unconfined}}\n"
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": ok}))
	bad := webContainer + "        securityContext: {privileged: true, allowPrivilegeEscalation: false, seccompProfile: {type: Localhost}}\n"
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": bad}),
		`d.yaml:12:101: error: spec.template.spec.containers[0].securityContext.seccompProfile.type: berth does not support "Localhost" here; it supports "RuntimeDefault" or "Unconfined"`)
	unsafe := strings.Replace(webContainer, "    spec:\n", "    spec:\n      securityContext: {sysctls: [{name: net.core.somaxconn, value: \"1024\"}]}\n", 1)
	if res := loadRepo(t, map[string]string{"d.yaml": unsafe}); len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), `berth does not support "net.core.somaxconn" here; it supports "kernel.shm_rmid_forced"`) {
		t.Errorf("an unsafe sysctl: %v", res.Diagnostics)
	}
	bad = webContainer + "        securityContext: {privileged: true, allowPrivilegeEscalation: false}\n"
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": bad}),
		`d.yaml:12:71: error: spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation: cannot be false for a privileged container`)
}

// The downward API in env: the pod's fields and its containers' resources;
// a path Kubernetes does not offer, a zero divisor and a container the pod
// does not have are errors.
func TestEnvDownwardAPISchema(t *testing.T) {
	ok := webContainer + `        env:
        - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: IP, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: status.podIP}}}
        - {name: TIER, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
        - {name: MEM, valueFrom: {resourceFieldRef: {containerName: web, resource: limits.memory, divisor: 1Mi}}}
        - {name: CPU, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
        - {name: DISK, valueFrom: {resourceFieldRef: {resource: limits.ephemeral-storage, divisor: 1Mi}}}
        resources: {requests: {ephemeral-storage: 1Gi}, limits: {ephemeral-storage: 2Gi}}
`
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": ok}))
	for env, want := range map[string]string{
		"{name: A, valueFrom: {fieldRef: {fieldPath: metadata.labels}}}":                               `got "metadata.labels", want #PodField (metadata.name, metadata.namespace`,
		`{name: B, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: "0"}}}`:               "resourceFieldRef.divisor: must be a quantity above zero",
		"{name: C, valueFrom: {resourceFieldRef: {containerName: db, resource: limits.cpu}}}":          `the pod has no container "db"`,
		"{name: D, valueFrom: {fieldRef: {fieldPath: status.podIP}, secretKeyRef: {name: s, key: k}}}": "needs exactly one of configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef",
	} {
		res := loadRepo(t, map[string]string{"d.yaml": webContainer + "        env:\n        - " + env + "\n"})
		if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), want) {
			t.Errorf("%s: %v, want one diagnostic with %q", env, res.Diagnostics, want)
		}
	}
}

// initContainers: checked as containers are (names unique across both
// lists, mounts of declared volumes, references), and without probes,
// which a container that runs to completion cannot have.
func TestInitContainersSchema(t *testing.T) {
	ok := strings.Replace(webContainer, "      containers:\n", `      volumes: [{name: work, emptyDir: {}}]
      initContainers:
      - name: fetch
        image: busybox
        command: [sh, -c, "echo hi > /work/index.html"]
        volumeMounts: [{name: work, mountPath: /work}]
        env: [{name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
      containers:
`, 1)
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": ok}))
	bad := strings.Replace(webContainer, "      containers:\n", `      initContainers:
      - name: web
        image: busybox
        readinessProbe: {tcpSocket: {port: 80}}
        volumeMounts: [{name: nope, mountPath: /x}]
      containers:
`, 1)
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": bad}),
		"d.yaml:12:25: error: spec.template.spec.initContainers[0].readinessProbe: an init container runs to completion and cannot have a readinessProbe, as in Kubernetes",
		`d.yaml:13:31: error: spec.template.spec.initContainers[0].volumeMounts[0].name: no volume named "nope" in spec.volumes`,
		`d.yaml:15:15: error: spec.template.spec.containers[0].name: container name "web" is used twice`,
	)
}

// Lifecycle hooks and gRPC probes: each takes exactly one action of its
// own kind (sleep is a hook's, grpc a probe's), and init containers have
// no hooks.
func TestLifecycleAndGRPCSchema(t *testing.T) {
	ok := webContainer + `        ports: [{name: http, containerPort: 8080}]
        lifecycle:
          postStart: {exec: {command: [sh, -c, "echo started > /tmp/started"]}}
          preStop: {sleep: {seconds: 5}}
        readinessProbe: {grpc: {port: 9090, service: shop}}
        livenessProbe: {grpc: {port: 9090}}
      - name: side
        image: busybox
        lifecycle: {preStop: {httpGet: {path: /quit, port: 8081}}}
`
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": ok}))
	for body, want := range map[string]string{
		"        lifecycle: {preStop: {grpc: {port: 9090}}}\n":                                 "spec.template.spec.containers[0].lifecycle.preStop.grpc: berth does not support this field",
		"        readinessProbe: {sleep: {seconds: 1}}\n":                                      "spec.template.spec.containers[0].readinessProbe.sleep: berth does not support this field",
		"        lifecycle: {postStart: {sleep: {seconds: 1}, exec: {command: [\"true\"]}}}\n": "a hook needs exactly one of exec, httpGet, tcpSocket, sleep (has 2)",
		"        lifecycle: {preStop: {httpGet: {port: admin}}}\n":                             `this container has no port named "admin"`,
	} {
		res := loadRepo(t, map[string]string{"d.yaml": webContainer + body})
		if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), want) {
			t.Errorf("%s: %v, want one diagnostic with %q", body, res.Diagnostics, want)
		}
	}
	initHook := strings.Replace(webContainer, "      containers:\n", "      initContainers:\n      - {name: setup, image: busybox, lifecycle: {preStop: {sleep: {seconds: 1}}}}\n      containers:\n", 1)
	res := loadRepo(t, map[string]string{"d.yaml": initHook})
	if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), "an init container cannot have lifecycle hooks") {
		t.Errorf("init container hooks: %v", res.Diagnostics)
	}
}

// imagePullSecrets: a missing one is a warning (Kubernetes pulls without
// it), one of another type an error; a registry Secret holds its key with
// the JSON the kubelet reads.
func TestImagePullSecretsSchema(t *testing.T) {
	pod := strings.Replace(webContainer, "    spec:\n", "    spec:\n      imagePullSecrets: [{name: regcred}, {name: plain}, {name: absent}]\n", 1)
	cfg := base64.StdEncoding.EncodeToString([]byte(`{"auths":{"registry.example.com":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("u:p")) + `"}}}`))
	secrets := `apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: ` + cfg + `}
---
apiVersion: v1
kind: Secret
metadata: {name: plain}
stringData: {a: b}
---
apiVersion: v1
kind: Secret
metadata: {name: broken}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: "{not json"}
---
apiVersion: v1
kind: Secret
metadata: {name: keyless}
type: kubernetes.io/dockercfg
stringData: {other: x}
`
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": pod, "s.yaml": secrets}),
		`d.yaml:9:50: error: Secret "plain" is of type "Opaque"; an image pull secret is of type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg`,
		`d.yaml:9:65: warning: Secret "absent" is not defined in namespace "default"; images are pulled without it, as Kubernetes does`,
		`s.yaml:16:33: error: stringData[".dockerconfigjson"]: .dockerconfigjson is not a docker config: invalid character 'n' looking for beginning of object key string`,
		`s.yaml:21:7: error: type: a Secret of type kubernetes.io/dockercfg needs the key .dockercfg in data or stringData`,
	)
}

// What `kubectl get -o yaml` adds to a manifest (the API server's metadata)
// is accepted and ignored; appProtocol and hostAliases are accepted.
func TestFromClusterShapes(t *testing.T) {
	dep := strings.Replace(webContainer, "metadata: {name: web}\n", `metadata:
  name: web
  creationTimestamp: "2024-05-02T09:14:11Z"
  resourceVersion: "81234"
  uid: 6b1e4a52-2f0c-4a58-9d0e-0c8c1c1f1b2a
  generation: 3
  managedFields: [{manager: kubectl, operation: Update}]
`, 1)
	dep = strings.Replace(dep, "    spec:\n", "    spec:\n      hostAliases: [{ip: 10.1.2.3, hostnames: [db.corp.test, db]}]\n", 1)
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, appProtocol: http}]\n"
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": dep, "s.yaml": svc}))
}

// Scheduling constraints as Helm charts write them are accepted.
func TestSchedulingConstraintsSchema(t *testing.T) {
	ok := strings.Replace(webContainer, "    spec:\n", `    spec:
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 1
            podAffinityTerm:
              labelSelector: {matchLabels: {app: web}}
              topologyKey: kubernetes.io/hostname
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}]
      tolerations: [{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}]
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: web}}}
`, 1)
	assertDiags(t, loadRepo(t, map[string]string{"d.yaml": ok}))
	bad := strings.Replace(webContainer, "    spec:\n", "    spec:\n      tolerations: [{key: k, operator: Equal, value: v, effect: NoExecute, tolerationSeconds: 30}]\n", 1)
	if res := loadRepo(t, map[string]string{"d.yaml": bad}); len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), "tolerationSeconds: berth does not support this field") {
		t.Errorf("tolerationSeconds: %v", res.Diagnostics)
	}
}
