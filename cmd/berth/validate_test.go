package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the berth command line in-process and returns its output and
// the exit code main would use.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, code, _ := execute(args...)
	return out, code
}

// execute runs berth with args and returns its output, exit status and
// the message main would print.
func execute(args ...string) (string, int, string) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	var ee *exitError
	switch {
	case err == nil:
		return out.String(), 0, ""
	case errors.As(err, &ee):
		if ee.err != nil {
			return out.String(), ee.code, ee.err.Error()
		}
		return out.String(), ee.code, ""
	}
	return out.String() + err.Error(), 2, err.Error()
}

func badRepo(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: 1}\n",
		"b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"s.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: x}\n  ports: [{port: 80}]\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestValidateExitCodes(t *testing.T) {
	out, code := run(t, "validate", "../../examples/hello", "../../examples/cue-app")
	if code != 0 || !strings.HasSuffix(out, "5 files, 11 objects, 0 errors, 0 warnings\n") {
		t.Errorf("valid examples: exit %d\n%s", code, out)
	}
	dir := badRepo(t)
	out, code = run(t, "validate", dir)
	if code != 1 {
		t.Errorf("invalid repo: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		dir + "/a.yaml:4:11: error: data.k: got int 1, want string",
		dir + "/b.yaml:3:18: error: ConfigMap default/a is defined twice; first at " + dir + "/a.yaml:3:18",
		dir + "/a.yaml:3:18: note: first definition",
		dir + "/s.yaml:5:13: warning: spec.selector {app=x} matches no Deployment's pods",
		"3 files, 2 objects, 2 errors, 1 warning\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, code := run(t, "validate", "no/such/path"); code != 2 {
		t.Errorf("unreadable path: exit %d, want 2", code)
	}
	if _, code := run(t, "validate", "--format", "yaml", "."); code != 2 {
		t.Errorf("unknown format: exit %d, want 2", code)
	}
	if _, code := run(t, "validate", "--no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

func TestValidateFormats(t *testing.T) {
	dir := badRepo(t)

	out, code := run(t, "validate", "--format", "json", dir)
	var js struct {
		Files, Objects, Errors, Warnings int
		Diagnostics                      []struct {
			Severity, File, Rule, Message string
			Line, Column                  int
		}
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || code != 1 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if js.Errors != 2 || js.Warnings != 1 || len(js.Diagnostics) != 3 || js.Diagnostics[0].Line != 4 || js.Diagnostics[0].Column != 11 || js.Diagnostics[0].Rule != "schema" {
		t.Errorf("json: %+v", js)
	}

	out, _ = run(t, "validate", "--format", "junit", dir)
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Text string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal([]byte(out), &suite); err != nil {
		t.Fatalf("junit: %v\n%s", err, out)
	}
	if suite.Tests != 3 || suite.Failures != 2 || suite.Cases[0].Failure == nil || !strings.Contains(suite.Cases[0].Failure.Text, "a.yaml:4:11") {
		t.Errorf("junit: %+v\n%s", suite, out)
	}

	out, _ = run(t, "validate", "--format", "github", dir)
	if !strings.Contains(out, "::error file="+dir+"/a.yaml,line=4,col=11,title=berth schema::data.k: got int 1, want string\n") ||
		!strings.Contains(out, "::warning file="+dir+"/s.yaml,line=5,col=13,") {
		t.Errorf("github:\n%s", out)
	}

	out, _ = run(t, "validate", "--format", "sarif", dir)
	var sarif struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct{ Rules []struct{ ID string } }
			}
			Results []struct {
				RuleID, Level string
				Locations     []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine, StartColumn int }
					}
				}
				RelatedLocations []struct{}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil {
		t.Fatalf("sarif: %v", err)
	}
	r := sarif.Runs[0].Results
	if sarif.Version != "2.1.0" || len(r) != 3 || r[0].Locations[0].PhysicalLocation.Region.StartLine != 4 ||
		r[0].Locations[0].PhysicalLocation.Region.StartColumn != 11 || len(r[1].RelatedLocations) != 1 || len(sarif.Runs[0].Tool.Driver.Rules) != 3 {
		t.Errorf("sarif: %+v", sarif)
	}
}

// berth validate refuses what the masters refuse, with the same words: a
// berth.yaml that is a link out of the repository (nothing of its target
// shown, not even in a CI annotation), any other link out, and a
// repository without objects; and it warns of berth.yaml entries that
// match nothing.
func TestValidateGate(t *testing.T) {
	outside := t.TempDir()
	token := "bt1.77e3f0a9c2d4b6e8f1a3c5e7d9b0f2a4c6e8d1b3"
	if err := os.WriteFile(filepath.Join(outside, "join-master.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := badRepo(t)
	if err := os.Symlink(filepath.Join(outside, "join-master.token"), filepath.Join(dir, "berth.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "github", "json", "sarif", "junit"} {
		out, code := run(t, "validate", "--format", format, dir)
		if code != 1 || strings.Contains(out, token[:8]) || !strings.Contains(out, "points outside the repository; refusing to read it") {
			t.Errorf("%s: exit %d\n%s", format, code, out)
		}
	}
	out, _ := run(t, "validate", dir)
	if want := dir + "/berth.yaml:1:1: error: symlink to \"" + outside; !strings.HasPrefix(out, want) || strings.Count(out, "error:") != 1 {
		t.Errorf("text:\n%s\nwant %s...", out, want)
	}

	os.Remove(filepath.Join(dir, "berth.yaml"))
	os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte("include: [\"apps/**\"]\nignoreKinds: [Kustomization]\n"), 0o644)
	out, code := run(t, "validate", dir)
	for _, want := range []string{
		dir + "/berth.yaml:1:1: error: no objects: applying this would remove every object from the cluster; if that is intended, set allowEmpty: true in berth.yaml",
		dir + `/berth.yaml:1:11: warning: berth.yaml: include "apps/**" matches no file the loader reads`,
		dir + `/berth.yaml:2:15: warning: berth.yaml: ignoreKinds "Kustomization": no document has this kind`,
	} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	os.Remove(filepath.Join(dir, "berth.yaml"))
	os.Symlink("/etc", filepath.Join(dir, "etc"))
	out, code = run(t, "validate", dir)
	if want := dir + `/etc:1:1: error: symlink to "/etc" points outside the repository; refusing to read it`; code != 1 || !strings.Contains(out, want) {
		t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
	}
}
