package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth/berth/schemas"
)

// The benchmarked repository: 10,000 objects in 2,000 files, 40 namespaces.
const (
	benchFiles          = 2000
	benchObjectsPerFile = 5
	benchObjects        = benchFiles * benchObjectsPerFile
)

// testFiles keeps TestGeneratedRepoIsValid quick (3 namespaces, 600 objects)
// while still crossing namespace boundaries.
const testFiles = 120

func TestMain(m *testing.M) {
	code := m.Run()
	// The benchmark repositories are shared by several benchmarks, so they
	// live outside b.TempDir and are removed here.
	repos.Lock()
	for _, dir := range repos.dirs {
		os.RemoveAll(dir)
	}
	repos.Unlock()
	rollout.env.Close()
	os.Exit(code)
}

var repos = struct {
	sync.Mutex
	dirs map[bool]string // by cueVariant
}{dirs: map[bool]string{}}

// benchRepo generates the benchmark repository once per process: with
// b.Loop each benchmark function runs once, but BenchmarkValidateYAML and
// BenchmarkCueVet read the same files.
func benchRepo(tb testing.TB, cueVariant bool) string {
	tb.Helper()
	repos.Lock()
	defer repos.Unlock()
	if dir, ok := repos.dirs[cueVariant]; ok {
		return dir
	}
	dir, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := GenerateRepo(dir, benchFiles, benchObjectsPerFile, cueVariant); err != nil {
		os.RemoveAll(dir)
		tb.Fatal(err)
	}
	repos.dirs[cueVariant] = dir
	return dir
}

// mustLoad loads dir and fails unless every object is valid, with neither
// errors nor warnings: a benchmark of a repository that fails would time the
// error path, not validation.
func mustLoad(tb testing.TB, dir string, wantObjects int) *schemas.Result {
	tb.Helper()
	res := schemas.Load([]string{dir})
	if res.Errors() > 0 || res.Warnings() > 0 {
		var lines []string
		for i, d := range res.Diagnostics {
			if i == 20 {
				lines = append(lines, "...")
				break
			}
			lines = append(lines, d.String())
		}
		tb.Fatalf("%s: %d errors, %d warnings:\n  %s", dir, res.Errors(), res.Warnings(), strings.Join(lines, "\n  "))
	}
	if len(res.Objects) != wantObjects {
		tb.Fatalf("%s: %d objects, want %d", dir, len(res.Objects), wantObjects)
	}
	return res
}

func TestGeneratedRepoIsValid(t *testing.T) {
	yamlDir, cueDir := t.TempDir(), t.TempDir()
	if err := GenerateRepo(yamlDir, testFiles, benchObjectsPerFile, false); err != nil {
		t.Fatal(err)
	}
	if err := GenerateRepo(cueDir, testFiles, benchObjectsPerFile, true); err != nil {
		t.Fatal(err)
	}
	want := testFiles * benchObjectsPerFile
	yamlRes := mustLoad(t, yamlDir, want)
	cueRes := mustLoad(t, cueDir, want)

	// The mix of kinds the generator promises.
	kinds := map[string]int{}
	for _, o := range yamlRes.Objects {
		kinds[o.ID().Kind]++
	}
	namespaces := (testFiles + FilesPerNamespace - 1) / FilesPerNamespace
	wantKinds := map[string]int{
		"Deployment": testFiles, "Service": testFiles, "Secret": testFiles,
		"ConfigMap": 2*testFiles - namespaces, "Namespace": namespaces,
	}
	for k, n := range wantKinds {
		if kinds[k] != n {
			t.Errorf("%d %s objects, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}

	// The CUE variant must hold the same objects, defaults applied, or
	// BenchmarkValidateCUE would not measure the same work.
	if y, c := objectsByID(t, yamlRes), objectsByID(t, cueRes); !slices.Equal(y, c) {
		for i := range min(len(y), len(c)) {
			if y[i] != c[i] {
				t.Fatalf("the CUE variant differs from the YAML one; first difference:\nyaml: %s\ncue:  %s", y[i], c[i])
			}
		}
		t.Fatalf("the CUE variant has %d objects, the YAML one %d", len(c), len(y))
	}
}

// objectsByID renders each object as "id json", sorted by id.
func objectsByID(t *testing.T, res *schemas.Result) []string {
	t.Helper()
	var out []string
	for _, o := range res.Objects {
		out = append(out, o.ID().String()+" "+string(o.JSON))
	}
	sort.Strings(out)
	return out
}

func TestGenerateRepoIsDeterministic(t *testing.T) {
	for _, cueVariant := range []bool{false, true} {
		a, b := t.TempDir(), t.TempDir()
		for _, dir := range []string{a, b} {
			if err := GenerateRepo(dir, 60, 6, cueVariant); err != nil {
				t.Fatal(err)
			}
		}
		if x, y := readTree(t, a), readTree(t, b); !maps.Equal(x, y) {
			t.Errorf("cueVariant=%v: two runs wrote different repositories", cueVariant)
		}
	}
}

func TestGenerateRepoRejectsTooFewObjects(t *testing.T) {
	if err := GenerateRepo(t.TempDir(), 10, MinObjectsPerFile-1, false); err == nil {
		t.Error("GenerateRepo accepted fewer objects per file than an app needs")
	}
}

func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// benchmarkLoad times schemas.Load over the whole repository, as
// `berth validate DIR` runs it (all cores; schemas compiled once per
// process, by the warm-up load, as the CLI does once per run).
func benchmarkLoad(b *testing.B, cueVariant bool) {
	dir := benchRepo(b, cueVariant)
	mustLoad(b, dir, benchObjects) // warm-up and honesty check, not timed
	cpu0, ok := processCPU()
	for b.Loop() {
		if res := schemas.Load([]string{dir}); res.Errors() > 0 || len(res.Objects) != benchObjects {
			b.Fatalf("%d errors, %d objects", res.Errors(), len(res.Objects))
		}
	}
	cpu1, _ := processCPU()
	reportObjects(b, benchObjects)
	if ok {
		reportCPU(b, benchObjects, cpu1-cpu0)
	}
}

func BenchmarkValidateYAML(b *testing.B) { benchmarkLoad(b, false) }

func BenchmarkValidateCUE(b *testing.B) { benchmarkLoad(b, true) }

func reportObjects(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(float64(perOp), "objects/op")
}

// reportCPU reports objects per CPU second (user and system, all threads):
// the work it takes, whatever else runs on the machine and however many
// cores each tool uses.
func reportCPU(b *testing.B, perOp int, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(perOp)*float64(b.N)/cpu.Seconds(), "objects/cpu-s")
	}
}

// objectSchema makes the mixed-kind data files checkable with one `cue vet
// -d '#Object'`. It dispatches on kind rather than trying every definition
// in a disjunction: that is how a user would write it, CUE then unifies each
// object with its own definition only, and errors name the offending field
// ("spec.replicas: conflicting values") instead of "empty disjunction". The
// kind list keeps unknown kinds an error, as they are for berth.
const objectSchema = `package berth

#Object: {
	kind: "Namespace" | "ConfigMap" | "Secret" | "Service" | "Deployment"
	if kind == "Namespace" {#Namespace}
	if kind == "ConfigMap" {#ConfigMap}
	if kind == "Secret" {#Secret}
	if kind == "Service" {#Service}
	if kind == "Deployment" {#Deployment}
}
`

// maxArgBytes bounds one cue vet command line; Linux allows far more, but
// 2,000 short relative paths fit in one invocation anyway.
const maxArgBytes = 512 << 10

// BenchmarkCueVet times the cue CLI, at the version berth is built with, on
// the YAML files of BenchmarkValidateYAML against berth's own schemas. Each
// process pays its start-up and schema load, as it does for a user.
func BenchmarkCueVet(b *testing.B) {
	cue := cueBinary(b)
	repo := benchRepo(b, false)
	schemaDir := b.TempDir()
	files := schemas.CUEFiles()
	files["zz_object.cue"] = []byte(objectSchema)
	var schemaArgs []string
	for name, src := range files {
		p := filepath.Join(schemaDir, name)
		if err := os.WriteFile(p, src, 0o644); err != nil {
			b.Fatal(err)
		}
		schemaArgs = append(schemaArgs, p)
	}
	sort.Strings(schemaArgs)
	vet := func(dir string, data []string) (*exec.Cmd, []byte, error) {
		cmd := exec.Command(cue, append(append([]string{"vet", "-d", "#Object"}, schemaArgs...), data...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return cmd, out, err
	}

	checkCueVetRejects(b, vet)

	var data []string
	err := filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			rel, _ := filepath.Rel(repo, p)
			data = append(data, rel)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	sort.Strings(data)
	if len(data) != benchFiles {
		b.Fatalf("%d data files, want %d", len(data), benchFiles)
	}
	var batches [][]string
	size := 0
	for _, f := range data {
		if len(batches) == 0 || size+len(f)+1 > maxArgBytes {
			batches, size = append(batches, nil), 0
		}
		batches[len(batches)-1] = append(batches[len(batches)-1], f)
		size += len(f) + 1
	}

	var cpu time.Duration
	for b.Loop() {
		for _, batch := range batches {
			cmd, out, err := vet(repo, batch)
			if err != nil {
				b.Fatalf("cue vet rejected the valid repository: %v\n%s", err, truncate(out))
			}
			cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
	}
	b.ReportMetric(float64(len(batches)), "processes/op")
	reportObjects(b, benchObjects)
	reportCPU(b, benchObjects, cpu)
}

// checkCueVetRejects makes sure the comparison is honest: cue vet with this
// schema and these flags must reject invalid objects, in every document of a
// multi-document file, and in any file of a batch.
func checkCueVetRejects(b *testing.B, vet func(dir string, data []string) (*exec.Cmd, []byte, error)) {
	b.Helper()
	dir := b.TempDir()
	if err := GenerateRepo(dir, 1, benchObjectsPerFile, false); err != nil {
		b.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "*.yaml"))
	if len(matches) != 1 {
		b.Fatalf("want one generated file, got %v", matches)
	}
	good, err := os.ReadFile(matches[0])
	if err != nil {
		b.Fatal(err)
	}
	if _, out, err := vet(dir, []string{matches[0]}); err != nil {
		b.Fatalf("cue vet rejects a valid file: %v\n%s", err, out)
	}
	for _, c := range []struct {
		name, old, new, want string
	}{
		{"replicas of the wrong type", "  replicas: ", "  replicas: \"three\" #", "spec.replicas"},
		{"unknown field", "  revisionHistoryLimit: 5\n", "  revisionHistoryLimit: 5\n  replica: 3\n", "field not allowed"},
		{"invalid base64 in a later document", "  API_TOKEN: ", "  API_TOKEN: not*base64 #", "data.API_TOKEN"},
		{"unsupported kind", "kind: Service\n", "kind: Widget\n", "kind"},
	} {
		bad := strings.Replace(string(good), c.old, c.new, 1)
		if bad == string(good) {
			b.Fatalf("%s: %q is not in the generated file", c.name, c.old)
		}
		p := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			b.Fatal(err)
		}
		_, out, err := vet(dir, []string{matches[0], p})
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			b.Fatalf("cue vet accepts an invalid object (%s): err=%v\n%s", c.name, err, out)
		}
		if !bytes.Contains(out, []byte(c.want)) {
			b.Fatalf("cue vet rejects %s without naming %q:\n%s", c.name, c.want, out)
		}
	}
}

func truncate(b []byte) []byte {
	if len(b) > 4000 {
		return append(b[:4000:4000], "..."...)
	}
	return b
}

// cueBinary returns a cue CLI at the version of cuelang.org/go that berth is
// built with, installing it once into the user cache when none is found.
// `go build cuelang.org/go/cmd/cue` from this module would need cmd/cue's
// own dependencies in go.mod; `go install ...@version` needs no change here.
func cueBinary(b *testing.B) string {
	b.Helper()
	version, err := cueModuleVersion()
	if err != nil {
		b.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	gobin := filepath.Join(cache, "berth-bench", "cue-"+version)
	candidates := []string{filepath.Join(gobin, "cue")}
	if gopath, err := exec.Command(goTool(), "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
			candidates = append(candidates, filepath.Join(p, "bin", "cue"))
		}
	}
	if p, err := exec.LookPath("cue"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if cueVersion(c) == version {
			return c
		}
	}
	start := time.Now()
	cmd := exec.Command(goTool(), "install", "cuelang.org/go/cmd/cue@"+version)
	// Outside this module and without its GOFLAGS, go install @version
	// builds cmd/cue with its own go.mod.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Skipf("cue %s is not installed and could not be: go install cuelang.org/go/cmd/cue@%s: %v\n%s", version, version, err, out)
	}
	bin := filepath.Join(gobin, "cue")
	if got := cueVersion(bin); got != version {
		b.Fatalf("installed %s reports version %q, want %s", bin, got, version)
	}
	b.Logf("installed cue %s into %s in %v", version, gobin, time.Since(start).Round(time.Second))
	return bin
}

// cueModuleVersion is the version of cuelang.org/go in berth's build list
// (go.mod), the one berth's CUE path runs. Test binaries carry no module
// dependencies in their build info, so the go command is asked.
func cueModuleVersion() (string, error) {
	out, err := exec.Command(goTool(), "list", "-m", "-f", "{{.Version}} {{with .Replace}}{{.Path}} {{.Version}}{{end}}", "cuelang.org/go").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%v: %s", err, exit.Stderr)
		}
		return "", fmt.Errorf("go list -m cuelang.org/go: %v", err)
	}
	f := strings.Fields(string(out))
	switch {
	case len(f) == 1:
		return f[0], nil
	case len(f) == 3:
		return f[2], nil // replaced by another version
	}
	return "", fmt.Errorf("cuelang.org/go is replaced (%s): no version to install cue at", strings.TrimSpace(string(out)))
}

// cueVersion runs `bin version` and returns the version it names, or "".
func cueVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimPrefix(strings.TrimSpace(first), "cue version ")
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
