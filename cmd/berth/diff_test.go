package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance"
)

// gitRepo is a config repository the tests commit to, with the hello
// example and a Secret in deploy/.
type gitRepo struct {
	t   *testing.T
	dir string
}

const testSecret = "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: hello}\nstringData: {password: hunter2, user: admin}\n"

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.email", "test@example.com")
	r.git("config", "user.name", "Test")
	deploy := filepath.Join(r.dir, "deploy")
	if err := os.CopyFS(deploy, os.DirFS("../../examples/hello")); err != nil {
		t.Fatal(err)
	}
	r.write("deploy/secret.yaml", testSecret)
	r.commit("hello")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *gitRepo) write(p, content string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, p), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// edit replaces old with new in a file of the work tree.
func (r *gitRepo) edit(p, old, new string) {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, p))
	if err != nil || !strings.Contains(string(b), old) {
		r.t.Fatalf("%s has no %q (%v)", p, old, err)
	}
	r.write(p, strings.Replace(string(b), old, new, 1))
}

func (r *gitRepo) commit(msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// startRepoMaster runs a real master following repo's main branch, path
// deploy/, and returns its admin config once the head is applied.
func startRepoMaster(t *testing.T, repo *gitRepo) (*appliance.Master, string) {
	t.Helper()
	m, conf := startTestMaster(t, appliance.Config{Repo: repo.dir, Branch: "main", Path: "deploy", Poll: time.Hour, Version: "v-test"})
	head := repo.git("rev-parse", "HEAD")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if rev := m.Store.State().Current(); rev != nil && rev.Commit == head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master did not apply %s", head)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return m, conf
}

// runMsg is run, with the message main would print after the output.
func runMsg(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, code, msg := execute(args...)
	return out + msg, code
}

// readOnlyConfig makes a read-only token's client config with token create
// --write-config.
func readOnlyConfig(t *testing.T, admin string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "ro.conf")
	if out, code := run(t, "token", "create", "--role", "read-only", "--write-config", conf, "--config", admin); code != 0 {
		t.Fatalf("token create --write-config: %d %s", code, out)
	}
	return conf
}

// TestDiffLocal: berth diff --local, with a read-only token, shows added,
// removed and changed objects field by field, a Secret's changed keys but
// no value, exits 1 for a difference, 0 for none and 2 for invalid input.
func TestDiffLocal(t *testing.T) {
	repo := newGitRepo(t)
	_, admin := startRepoMaster(t, repo)
	ro := readOnlyConfig(t, admin)
	deploy := filepath.Join(repo.dir, "deploy")

	out, code := run(t, "diff", "--local", deploy, "--config", ro)
	if code != 0 || !strings.Contains(out, "no differences") {
		t.Fatalf("the applied tree: exit %d\n%s", code, out)
	}

	repo.edit("deploy/app.yaml", "replicas: 3", "replicas: 5")
	repo.edit("deploy/secret.yaml", "hunter2", "hunter3")
	repo.edit("deploy/secret.yaml", "user: admin", "token: s3cr3t, user: admin")
	if err := os.Remove(filepath.Join(deploy, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	repo.edit("deploy/app.yaml", `                  name: hello-config
                  key: GREETING`, `                  name: greeting
                  key: GREETING`)
	repo.edit("deploy/app.yaml", "            name: hello-config", "            name: greeting")
	repo.write("deploy/greeting.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: greeting, namespace: hello}\ndata: {GREETING: hi, index.html: hi}\n")
	out, code = run(t, "diff", "--local", deploy, "--config", ro)
	if code != 1 {
		t.Fatalf("a changed tree: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"+ ConfigMap hello/greeting (added)",
		"- ConfigMap hello/hello-config (removed)",
		"~ Deployment hello/hello (changed)",
		"    spec.replicas: 3 → 5",
		`    spec.template.spec.volumes[0].configMap.name: "hello-config" → "greeting"`,
		"~ Secret hello/creds (changed)",
		`    data.password: (hidden) → (hidden, changed)`,
		`    data.token: (none) → (hidden)`,
		"1 added, 2 changed, 1 removed against the applied revision",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	for _, value := range []string{"hunter", "s3cr3t", "admin"} {
		if strings.Contains(out, value) {
			t.Errorf("a Secret's value %q is shown:\n%s", value, out)
		}
	}
	out, code = run(t, "diff", "--local", deploy, "-o", "diff", "--config", ro)
	if code != 1 || !strings.Contains(out, "--- applied/Deployment.hello.hello\n+++ new/Deployment.hello.hello\n") ||
		!strings.Contains(out, "-  replicas: 3\n+  replicas: 5\n") || strings.Contains(out, "hunter") {
		t.Errorf("-o diff: exit %d\n%s", code, out)
	}
	out, code = run(t, "diff", "--local", deploy, "-o", "markdown", "--config", ro)
	if code != 1 || !strings.Contains(out, "### berth diff: 1 added, 2 changed, 1 removed") || !strings.Contains(out, "```diff\n") {
		t.Errorf("-o markdown: exit %d\n%s", code, out)
	}

	repo.write("deploy/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n")
	out, code = run(t, "diff", "--local", deploy, "--config", ro)
	if code != 2 || !strings.Contains(out, "bad.yaml:3:") {
		t.Errorf("an invalid tree: exit %d, want 2 and the problem at its line\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"diff", "main", "--local", deploy},
		{"diff", "--local", deploy, "-o", "yaml"},
		{"diff", "--local", filepath.Join(deploy, "nope")},
		{"diff", "--local", deploy, "--path", "x"},
	} {
		if out, code := run(t, append(bad, "--config", ro)...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", bad, code, out)
		}
	}
}

// TestDiffRef: berth diff REF reads a branch's committed tree below the
// path the master loads, not the work tree.
func TestDiffRef(t *testing.T) {
	repo := newGitRepo(t)
	_, admin := startRepoMaster(t, repo)
	repo.git("checkout", "-q", "-b", "feature")
	repo.edit("deploy/app.yaml", `value: "1"`, `value: "2"`)
	repo.commit("version 2")
	repo.edit("deploy/app.yaml", "replicas: 3", "replicas: 9") // not committed
	out, code := run(t, "diff", "feature", "--repo", filepath.Join(repo.dir, "deploy"), "--config", admin)
	if code != 1 || !strings.Contains(out, `spec.template.spec.containers[0].env[0].value: "1" → "2"`) || strings.Contains(out, "replicas") {
		t.Errorf("diff feature: exit %d\n%s", code, out)
	}
	if out, code := run(t, "diff", "main", "--repo", repo.dir, "--config", admin); code != 0 {
		t.Errorf("diff main (the applied commit): exit %d\n%s", code, out)
	}
	// --path overrides the master's: the root holds no objects.
	if out, code := run(t, "diff", "main", "--repo", repo.dir, "--path", "nowhere", "--config", admin); code != 2 {
		t.Errorf("diff main --path nowhere: exit %d, want 2\n%s", code, out)
	}
	if out, code := runMsg(t, "diff", "no-such-branch", "--repo", repo.dir, "--config", admin); code != 2 || !strings.Contains(out, "no-such-branch") {
		t.Errorf("diff of an unknown ref: exit %d\n%s", code, out)
	}
}

// TestSyncCommand: berth sync --wait fetches at once (the master polls
// hourly) and reports applied or rejected; a read-only token is refused.
func TestSyncCommand(t *testing.T) {
	repo := newGitRepo(t)
	m, admin := startRepoMaster(t, repo)
	ro := readOnlyConfig(t, admin)
	if out, code := runMsg(t, "sync", "--config", ro); code != 1 || !strings.Contains(out, "403") {
		t.Errorf("sync with a read-only token: exit %d\n%s", code, out)
	}
	repo.edit("deploy/app.yaml", "replicas: 3", "replicas: 2")
	good := repo.commit("two replicas")
	out, code := run(t, "sync", "--wait", "--timeout", "1m", "--config", admin)
	if code != 0 || !strings.Contains(out, "applied "+good[:10]+": two replicas") {
		t.Fatalf("sync --wait: exit %d\n%s", code, out)
	}
	if cur := m.Store.State().Current(); cur == nil || cur.Commit != good {
		t.Fatalf("applied revision %v, want %s", cur, good)
	}
	repo.write("deploy/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n")
	bad := repo.commit("bad")
	out, code = run(t, "sync", "--wait", "--config", admin)
	if code != 1 || !strings.Contains(out, "rejected "+bad[:10]) || !strings.Contains(out, "deploy/bad.yaml:3:") {
		t.Errorf("sync --wait of a bad commit: exit %d\n%s", code, out)
	}
	if out, code := run(t, "sync", "--config", admin); code != 0 || !strings.Contains(out, "sync triggered") {
		t.Errorf("sync: exit %d\n%s", code, out)
	}
	if out, code := run(t, "sync", "--timeout", "1s", "--config", admin); code != 2 {
		t.Errorf("sync --timeout without --wait: exit %d\n%s", code, out)
	}
}

// TestVersionAndWriteConfig: berth version asks the master; token create
// --write-config writes a working 0600 config and replaces one only with
// --force.
func TestVersionAndWriteConfig(t *testing.T) {
	repo := newGitRepo(t)
	_, admin := startRepoMaster(t, repo)
	ro := readOnlyConfig(t, admin)
	if fi, err := os.Stat(ro); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("written config: %v %v", fi.Mode(), err)
	}
	out, code := run(t, "version", "--config", ro)
	if code != 0 || out != "Client Version: dev\nServer Version: v-test\n" {
		t.Errorf("version: exit %d\n%s", code, out)
	}
	if out, code := run(t, "version", "--config", filepath.Join(t.TempDir(), "none")); code != 0 || !strings.Contains(out, "Client Version: dev") {
		t.Errorf("version without a config: exit %d\n%s", code, out)
	}
	before, _ := os.ReadFile(ro)
	for _, args := range [][]string{
		{"--role", "read-only", "--write-config", ro},
		{"--role", "agent-join", "--write-config", filepath.Join(t.TempDir(), "x")},
		{"--role", "read-only", "--force"},
	} {
		if out, code := run(t, append([]string{"token", "create", "--config", admin}, args...)...); code != 2 {
			t.Errorf("token create %v: exit %d, want 2\n%s", args, code, out)
		}
	}
	if after, _ := os.ReadFile(ro); string(after) != string(before) {
		t.Error("the config was replaced without --force")
	}
	if out, code := run(t, "token", "create", "--config", admin, "--role", "admin", "--write-config", ro, "--force"); code != 0 {
		t.Fatalf("--force: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(ro); string(after) == string(before) {
		t.Error("--force did not replace the config")
	}
	// The replaced config holds an admin token: it may sync.
	if out, code := run(t, "sync", "--config", ro); code != 0 {
		t.Errorf("sync with the new admin config: exit %d\n%s", code, out)
	}
}

// TestCompletion: cobra's __complete offers kinds, names from the master,
// namespaces for -n and -o's values.
func TestCompletion(t *testing.T) {
	repo := newGitRepo(t)
	_, admin := startRepoMaster(t, repo)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"get", ""}, []string{"deployments", "pods", "services", "revisions"}},
		{[]string{"get", "deployments", ""}, []string{"hello"}},
		{[]string{"describe", "services", ""}, []string{"hello/hello"}},
		{[]string{"get", "pods", "-n", ""}, []string{"hello"}},
		{[]string{"get", "pods", "-o", ""}, []string{"wide", "json", "yaml", "name"}},
		{[]string{"diff", "-o", ""}, []string{"text", "diff", "markdown"}},
	} {
		out, code := run(t, append([]string{"__complete", tc.args[0], "--config", admin}, tc.args[1:]...)...)
		if code != 0 {
			t.Errorf("%v: exit %d\n%s", tc.args, code, out)
			continue
		}
		got := strings.Split(out, "\n")
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("__complete %v: no %q in\n%s", tc.args, w, out)
			}
		}
	}
	// Without a master: kinds still, names quietly none.
	out, code := run(t, "__complete", "get", "deployments", "--config", filepath.Join(t.TempDir(), "none"), "")
	if code != 0 || strings.Contains(out, "hello") || !strings.Contains(out, ":4") {
		t.Errorf("names without a master: exit %d\n%s", code, out)
	}
	if out, code := run(t, "completion", "bash"); code != 0 || !strings.Contains(out, "__start_berth") {
		t.Errorf("completion bash: exit %d", code)
	}
}

// fieldChanges names keys that are not identifiers as jq does, tells an
// absent field from a null one, and gives a list whose length changed as
// one change.
func TestFieldChanges(t *testing.T) {
	a := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": "a"}},
		"spec": map[string]any{"args": []any{"x"}, "note": nil}}
	b := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": "b"}},
		"spec": map[string]any{"args": []any{"x", "y"}}}
	var got []fieldChange
	fieldChanges("", a, b, true, true, &got)
	want := []fieldChange{
		{`metadata.labels["app.kubernetes.io/name"]`, `"a"`, `"b"`},
		{"spec.args", `["x"]`, `["x","y"]`},
		{"spec.note", "null", "(none)"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
