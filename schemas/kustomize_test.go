package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth/berth/schemas/objects"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/berth/berth/schemas/diag"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/kustomize")

// kustomizeRepo is a base and an overlay that use what overlays commonly
// do: patches of each kind, generators, a name prefix, common labels and
// image overrides.
var kustomizeRepo = map[string]string{
	"base/kustomization.yaml": `resources:
  - deploy.yaml
  - service.yaml
configMapGenerator:
  - name: web-config
    literals:
      - MODE=base
secretGenerator:
  - name: web-secret
    literals:
      - password=s3cret
`,
	"base/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: example/web:1
          ports:
            - name: http
              containerPort: 8080
          envFrom:
            - configMapRef:
                name: web-config
          env:
            - name: PASSWORD
              valueFrom:
                secretKeyRef:
                  name: web-secret
                  key: password
        - name: proxy
          image: busybox
        - name: debug
          image: busybox:1.36
`,
	"base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - port: 80
      targetPort: http
`,
	"overlays/prod/kustomization.yaml": `resources:
  - ../../base
namePrefix: prod-
commonLabels:
  env: prod
images:
  - name: example/web
    newName: registry.example.com/web
    newTag: "2.0"
  - name: busybox
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
configMapGenerator:
  - name: web-config
    behavior: merge
    literals:
      - MODE=prod
patches:
  - path: replicas.yaml
  - path: service-type.yaml
    target:
      kind: Service
      name: web
`,
	"overlays/prod/replicas.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: debug
          $patch: delete
`,
	"overlays/prod/service-type.yaml": `- op: add
  path: /spec/type
  value: NodePort
`,
}

func TestKustomizeOverlay(t *testing.T) {
	res := loadRepo(t, kustomizeRepo)
	assertDiags(t, res)
	var ids []string
	for _, l := range res.Objects {
		ids = append(ids, l.ID().String())
		if bytes.Contains(l.JSON, []byte("config.kubernetes.io/origin")) {
			t.Errorf("%s keeps kustomize's origin annotation: %s", l.ID(), l.JSON)
		}
	}
	// Only the overlay renders: the base is its base, and none of the files
	// it pulled in is read again on its own.
	want := []string{"Deployment default/prod-web", "ConfigMap default/prod-web-config-2h42td9ggm", "Secret default/prod-web-secret-bf5fk5d75b", "Service default/prod-web"}
	if !slices.Equal(sortedCopy(ids), sortedCopy(want)) {
		t.Fatalf("objects %v, want %v", ids, want)
	}
	d := res.Objects[slices.Index(ids, want[0])]
	if d.Pos != (diag.Position{File: "base/deploy.yaml", Line: 1, Column: 1}) {
		t.Errorf("Deployment at %v, want base/deploy.yaml:1:1", d.Pos)
	}
	dep := d.Object.(*objects.Deployment)
	pod := dep.Spec.Template.Spec
	if dep.Spec.Replicas != 3 || len(pod.Containers) != 2 ||
		pod.Containers[0].Image != "registry.example.com/web:2.0" ||
		pod.Containers[1].Image != "busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111" ||
		pod.Containers[0].EnvFrom[0].ConfigMapRef.Name != "prod-web-config-2h42td9ggm" ||
		pod.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name != "prod-web-secret-bf5fk5d75b" ||
		dep.Metadata.Labels["env"] != "prod" || dep.Spec.Selector.MatchLabels["env"] != "prod" || dep.Spec.Template.Metadata.Labels["env"] != "prod" {
		js, _ := json.MarshalIndent(dep, "", "  ")
		t.Errorf("Deployment not as kustomize renders it:\n%s", js)
	}
	svc := res.Objects[slices.Index(ids, want[3])].Object.(*objects.Service)
	if svc.Spec.Type != "NodePort" || svc.Spec.Selector["env"] != "prod" {
		t.Errorf("Service: %+v", svc.Spec)
	}
	cm := res.Objects[slices.Index(ids, want[1])]
	// The overlay merges into the base's generator: kustomize's origin, and
	// so the position, is the base's entry.
	if cm.Pos != (diag.Position{File: "base/kustomization.yaml", Line: 5, Column: 5}) {
		t.Errorf("generated ConfigMap at %v, want its generator's entry", cm.Pos)
	}
	if got := cm.Object.(*objects.ConfigMap).Data["MODE"]; got != "prod" {
		t.Errorf("MODE=%q, want prod", got)
	}
	wantFiles := []string{"base/deploy.yaml", "base/kustomization.yaml", "base/service.yaml",
		"overlays/prod/kustomization.yaml", "overlays/prod/replicas.yaml", "overlays/prod/service-type.yaml"}
	if !slices.Equal(res.Files, wantFiles) {
		t.Errorf("files %v, want %v", res.Files, wantFiles)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// What berth validates is what kustomize renders, byte for byte, apart from
// the origin notes berth asks for and removes: the golden file is the
// library's own output, on disk.
func TestKustomizeGolden(t *testing.T) {
	dir := writeRepo(t, kustomizeRepo)
	golden := filepath.Join("testdata", "kustomize", "overlay.golden.yaml")
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "overlays", "prod"))
	if err != nil {
		t.Fatal(err)
	}
	direct, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(golden, direct, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(direct, want) {
		t.Errorf("kustomize renders, on disk:\n%s\nthe golden file has:\n%s", direct, want)
	}
	o := &options{maxFileBytes: DefaultMaxFileBytes, base: dir}
	src := collect(o, ".")
	defer src.gate.root.Close()
	renderKustomizations(o, []*source{src})
	defer src.top.root.Close()
	var rendered []byte
	for _, tk := range src.tasks {
		if kt, ok := tk.(*kustTask); ok {
			if fr := kt.run(); len(fr.diags) > 0 {
				t.Fatal(fr.diags)
			}
			y, err := kt.root.res.AsYaml()
			if err != nil {
				t.Fatal(err)
			}
			rendered = append(rendered, y...)
		}
	}
	if !bytes.Equal(rendered, want) {
		t.Errorf("berth renders:\n%s\nkustomize:\n%s", rendered, want)
	}
}

// A field's error is placed where the field is written, in the base the
// object comes from; a value kustomize changed is placed at its object,
// with a note at the kustomization that rendered it.
func TestKustomizePositions(t *testing.T) {
	files := map[string]string{}
	for k, v := range kustomizeRepo {
		files[k] = v
	}
	files["base/deploy.yaml"] = strings.Replace(kustomizeRepo["base/deploy.yaml"], "          ports:\n", "          workingDir: 7\n          ports:\n", 1)
	files["overlays/prod/replicas.yaml"] = strings.Replace(kustomizeRepo["overlays/prod/replicas.yaml"], "replicas: 3", "replicas: -3", 1)
	res := loadRepo(t, files)
	assertDiags(t, res,
		"base/deploy.yaml:18:23: error: spec.template.spec.containers[0].workingDir: got int 7, want string",
		"base/deploy.yaml:1:1: error: spec.replicas: got int -3")
	for _, d := range res.Diagnostics {
		related := len(d.Related) == 1 && d.Related[0].Position == diag.Position{File: "overlays/prod/kustomization.yaml", Line: 1, Column: 1}
		if related != (d.Line == 1) {
			t.Errorf("%v: related %v", d, d.Related)
		}
	}
	// Named as the user named the overlay, the base is where it is.
	dir := writeRepo(t, files)
	res = Load([]string{"overlays/prod"}, WithBase(dir))
	if len(res.Diagnostics) != 2 || res.Diagnostics[0].File != "base/deploy.yaml" {
		t.Errorf("overlay named alone: %v", res.Diagnostics)
	}
}

// Every top-most kustomization renders (both overlays of one base); the
// base alone does not, and files no kustomization reads are read as ever.
func TestKustomizeRoots(t *testing.T) {
	files := map[string]string{
		"overlays/staging/kustomization.yaml": "resources: [../../base]\nnamespace: staging\n",
		"namespaces.yaml":                     "apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n",
	}
	for k, v := range kustomizeRepo {
		files[k] = v
	}
	res := loadRepo(t, files)
	assertDiags(t, res)
	var ids []string
	for _, l := range res.Objects {
		ids = append(ids, l.ID().String())
	}
	if len(ids) != 9 || !slices.Contains(ids, "Deployment staging/web") || !slices.Contains(ids, "Deployment default/prod-web") || !slices.Contains(ids, "Namespace staging") {
		t.Errorf("objects %v", ids)
	}
	// The base alone renders when it is what is named; named beside an
	// overlay of it, it is the overlay's, and its argument is not empty.
	dir := writeRepo(t, files)
	res = Load([]string{"base"}, WithBase(dir))
	assertDiags(t, res)
	if len(res.Objects) != 4 {
		t.Errorf("base: %d objects", len(res.Objects))
	}
	res = Load([]string{"base", "overlays/prod"}, WithBase(dir))
	assertDiags(t, res)
	if len(res.Objects) != 4 || res.Objects[0].ID().Name != "prod-web" {
		t.Errorf("base and overlay: %d objects, the first %s", len(res.Objects), res.Objects[0].ID())
	}
}

func TestKustomizeExample(t *testing.T) {
	for _, dir := range []string{"kustomize", "kustomize/overlays/prod"} {
		res := Load([]string{filepath.Join("..", "examples", dir)})
		assertDiags(t, res)
		if len(res.Objects) != 4 {
			t.Fatalf("%s: %d objects, want 4", dir, len(res.Objects))
		}
		for _, l := range res.Objects {
			if d, ok := l.Object.(*objects.Deployment); ok && (d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Image != "localhost:5000/berth/hello:2") {
				t.Errorf("%s: Deployment %+v", dir, d.Spec)
			}
		}
	}
}

// berth.yaml's ignoreKinds applies to what kustomize renders; naming the
// Kustomization kind keeps the files read one by one, as before berth
// rendered kustomizations.
func TestKustomizeIgnoreKinds(t *testing.T) {
	files := map[string]string{
		"berth.yaml":         "ignoreKinds: [Role]\n",
		"kustomization.yaml": "resources: [cm.yaml, role.yaml]\nnamePrefix: x-\n",
		"cm.yaml":            cmYAML,
		"role.yaml":          "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n",
	}
	res := loadRepo(t, files)
	assertDiags(t, res)
	if len(res.Objects) != 1 || res.Objects[0].ID().Name != "x-cfg" {
		t.Errorf("objects %v", res.Objects)
	}
	files["berth.yaml"] = "ignoreKinds: [Role, Kustomization]\n"
	res = loadRepo(t, files)
	assertDiags(t, res)
	if len(res.Objects) != 1 || res.Objects[0].ID().Name != "cfg" {
		t.Errorf("objects %v", res.Objects)
	}
}

// What kustomize would fetch, run or read outside the repository is
// refused at the entry that asks for it, in one line, and nothing below
// that kustomization is read on its own.
func TestKustomizeRefusals(t *testing.T) {
	fetched := offline(t)
	defer fetched()
	const remote = "is remote; berth renders kustomizations offline and fetches nothing: copy it into the repository"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"https base", map[string]string{"app/kustomization.yaml": "resources:\n  - deploy.yaml\n  - https://github.com/org/repo//base?ref=v1\n"},
			`app/kustomization.yaml:3:5: error: resources: "https://github.com/org/repo//base?ref=v1" ` + remote},
		{"git base", map[string]string{"app/kustomization.yaml": "resources:\n  - git@github.com:org/repo.git//base\n"},
			`app/kustomization.yaml:2:5: error: resources: "git@github.com:org/repo.git//base" ` + remote},
		{"github base", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml, github.com/org/repo/base]\n"},
			`app/kustomization.yaml:1:26: error: resources: "github.com/org/repo/base" ` + remote},
		{"remote patch", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\npatches:\n  - path: HTTPS:example.com/p.yaml\n"},
			`app/kustomization.yaml:3:11: error: path: "HTTPS:example.com/p.yaml" ` + remote},
		{"remote generator file", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\nconfigMapGenerator:\n  - name: c\n    files: [k=http://169.254.169.254/]\n"},
			`app/kustomization.yaml:4:13: error: files: "k=http://169.254.169.254/" ` + remote},
		{"remote in a base", map[string]string{"app/kustomization.yaml": "resources: [../base]\n", "base/kustomization.yaml": "resources:\n  - ssh://git@example.com/repo\n"},
			`base/kustomization.yaml:2:5: error: resources: "ssh://git@example.com/repo" ` + remote},
		{"inline transformer", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\ntransformers:\n  - |\n    apiVersion: builtin\n    kind: PatchTransformer\n    metadata: {name: p}\n    path: https://example.com/p.yaml\n"},
			`app/kustomization.yaml:3:5: error: transformers: inline configuration: path: "https://example.com/p.yaml" ` + remote},
		{"transformer file", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\ntransformers: [t.yaml]\n",
			"app/t.yaml": "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: https://example.com/p.yaml\n"},
			`app/t.yaml:4:7: error: path: "https://example.com/p.yaml" ` + remote},
		{"transformer file, apiVersion twice", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\ntransformers: [t.yaml]\n",
			"app/t.yaml": "apiVersion: v1\nkind: PatchTransformer\nmetadata: {name: p}\napiVersion: /builtin\npath: https://example.com/p.yaml\n"},
			`app/t.yaml:5:7: error: path: "https://example.com/p.yaml" ` + remote},
		{"transformers rendered from a directory", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\ntransformers: [../t]\n",
			"berth.yaml":           "exclude: [t/**]\n",
			"t/kustomization.yaml": "resources: [t.yaml]\npatches: [{path: p.yaml, target: {kind: PatchTransformer}}]\n",
			"t/t.yaml":             "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: patch.yaml\n",
			"t/p.yaml":             "- op: replace\n  path: /path\n  value: https://example.com/p.yaml\n"},
			`app/kustomization.yaml:2:16: error: transformers: "../t" is a directory; berth configures built-in plugins from files only, which it checks for what kustomize would fetch`},
		{"helm", map[string]string{"app/kustomization.yaml": "helmCharts:\n  - name: redis\n    repo: https://charts.example.com\n"},
			"app/kustomization.yaml:1:1: error: helmCharts: berth does not run Helm; render the chart into the repository (helm template) and list the files under resources"},
		{"exec plugin", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\ngenerators: [gen.yaml]\n",
			"app/gen.yaml": "apiVersion: example.com/v1\nkind: Gen\nmetadata:\n  name: g\n  annotations:\n    config.kubernetes.io/function: |\n      exec: {path: /bin/sh}\n"},
			"app/kustomization.yaml:1:1: error: kustomize: loading generator plugins: failed to load generator: external plugins disabled; unable to load external plugin 'Gen'"},
		{"outside", map[string]string{"app/kustomization.yaml": "resources:\n  - ../../outside\n"},
			`app/kustomization.yaml:2:5: error: "../../outside" leads outside the repository; berth reads only the repository's files`},
		{"absolute", map[string]string{"app/kustomization.yaml": "resources: [/etc/passwd]\n"},
			`app/kustomization.yaml:1:13: error: "/etc/passwd" leads outside the repository; berth reads only the repository's files`},
		{"outside patch", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\npatches: [{path: ../../../p.yaml}]\n"},
			`app/kustomization.yaml:2:18: error: "../../../p.yaml" leads outside the repository; berth reads only the repository's files`},
		{"missing", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml, missing.yaml]\n"},
			"app/kustomization.yaml:1:1: error: kustomize: accumulating resources: accumulation err='accumulating resources from 'missing.yaml': "},
		{"name conflict", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml, again.yaml]\n", "app/again.yaml": deployYAML},
			"app/kustomization.yaml:1:1: error: kustomize: accumulating resources: accumulation err='merging resources from 'again.yaml': may not add resource with an already registered id: Deployment.v1.apps/web.[noNs]'"},
		{"bad patch", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\npatches: [{path: p.yaml}]\n",
			"app/p.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: nope}\nspec: {replicas: 2}\n"},
			`app/kustomization.yaml:1:1: error: kustomize: no resource matches strategic merge patch "Deployment.v1.apps/nope.[noNs]"`},
		{"unknown field", map[string]string{"app/kustomization.yaml": "resourcez: [deploy.yaml]\n"},
			`app/kustomization.yaml:1:1: error: kustomize: invalid Kustomization: json: unknown field "resourcez"`},
		{"invalid YAML", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml\n"},
			"app/kustomization.yaml:1:12: error: invalid YAML"},
		{"kustomize panics", map[string]string{"app/kustomization.yaml": "resources: [deploy.yaml]\nopenapi: {path: schema.json}\npatches: [{patch: '{kind: Deployment, metadata: {name: web}, spec: {replicas: 2}}'}]\n",
			"app/schema.json": `{"definitions": 5}`},
			"app/kustomization.yaml:1:1: error: kustomize: panic: invalid schema file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.files["app/deploy.yaml"] = deployYAML
			res := loadRepo(t, tc.files)
			assertDiags(t, res, tc.want)
			if len(res.Objects) != 0 {
				t.Errorf("objects of a kustomization that failed: %v", res.Objects)
			}
		})
	}
}

// A symlink out of the repository is refused at the kustomization's entry,
// and at the link, as everywhere.
func TestKustomizeSymlinkOut(t *testing.T) {
	dir := writeRepo(t, map[string]string{"kustomization.yaml": "resources: [cm.yaml, link.yaml]\n", "cm.yaml": cmYAML})
	outside := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(outside, []byte(cmYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	res := Load([]string{"."}, WithBase(dir))
	assertDiags(t, res,
		`kustomization.yaml:1:22: error: "link.yaml" is a symlink that points outside the repository; refusing to read it`,
		`link.yaml:1:1: error: symlink to "/tmp/`)
}

// offline makes a fetch fail the test: kustomize downloads with Go's
// default HTTP transport and clones with the git on PATH.
func offline(tb testing.TB) (fetched func()) {
	tb.Helper()
	marker := filepath.Join(tb.TempDir(), "fetched")
	bin := tb.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte("#!/bin/sh\necho git \"$@\" >> "+marker+"\nexit 1\n"), 0o755); err != nil {
		tb.Fatal(err)
	}
	path := os.Getenv("PATH")
	os.Setenv("PATH", bin)
	transport := http.DefaultTransport
	http.DefaultTransport = roundTripper(func(r *http.Request) (*http.Response, error) {
		f, err := os.OpenFile(marker, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			f.WriteString("GET " + r.URL.String() + "\n")
			f.Close()
		}
		return nil, errors.New("offline")
	})
	tb.Cleanup(func() {
		os.Setenv("PATH", path)
		http.DefaultTransport = transport
	})
	return func() {
		if b, err := os.ReadFile(marker); err == nil {
			tb.Fatalf("kustomize fetched:\n%s", b)
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A kustomization named as a file, or one in a file kustomize would not
// read, is not rendered; the error says what would be.
func TestKustomizationNotRendered(t *testing.T) {
	dir := writeRepo(t, map[string]string{"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": cmYAML,
		"other/kust.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\n"})
	assertDiags(t, Load([]string{"app/kustomization.yaml"}, WithBase(dir)),
		"app/kustomization.yaml:1:1: error: berth renders a kustomization when it validates the directory holding it; name the directory, or skip it with `ignoreKinds: [\"Kustomization\"]` in berth.yaml")
	assertDiags(t, Load([]string{"other"}, WithBase(dir)),
		"other/kust.yaml:2:7: error: kustomize reads a kustomization only from a file named kustomization.yaml, kustomization.yml or Kustomization, whose directory berth renders; rename it, or skip it")
}
