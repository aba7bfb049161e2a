package schemas

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/schemas/objects"
	"go.yaml.in/yaml/v3"

	"github.com/berth/berth/schemas/diag"
)

// TestCorpus measures how many Deployments and Services, written the way
// public demo apps write them (testdata/corpus, a directory an app), berth
// accepts unchanged, and why it rejects the others; docs/corpus.md holds
// the result. Rejections are the measurement, not failures: the test fails
// only when the loader panics, hangs or reports an internal error.
// `go test ./schemas -run TestCorpus -v` prints the tables.
func TestCorpus(t *testing.T) {
	apps, err := os.ReadDir(filepath.Join("testdata", "corpus"))
	if err != nil {
		t.Fatal(err)
	}
	total, passed := map[string]int{}, map[string]int{}
	// Why Deployments and Services are rejected: by message, the objects.
	reasons := map[string]map[objects.ObjectID]bool{}
	occurrences := map[string]int{}
	var files []string
	for _, app := range apps {
		dir := filepath.Join("testdata", "corpus", app.Name())
		res := loadWithin(t, dir, time.Minute)
		fileErrors := map[string][]string{}
		objectErrors := map[string][]string{}
		for _, d := range res.Diagnostics {
			if strings.Contains(d.Message, "internal error") {
				t.Errorf("%v", d)
			}
			if d.Severity != diag.Error {
				continue
			}
			fileErrors[d.File] = append(fileErrors[d.File], d.Message)
			if d.Object != "" {
				objectErrors[d.Object] = append(objectErrors[d.Object], d.Message)
			}
		}
		loaded := map[objects.ObjectID]bool{}
		for _, l := range res.Objects {
			loaded[l.ID()] = true
		}
		names, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, name := range names {
			file := filepath.Join(dir, filepath.Base(name))
			verdict := "pass"
			if n := len(fileErrors[file]); n == 1 {
				verdict = "1 error"
			} else if n > 1 {
				verdict = fmt.Sprintf("%d errors", n)
			}
			files = append(files, fmt.Sprintf("| %s | %s |", strings.TrimPrefix(file, "testdata/corpus/"), verdict))
			for _, o := range corpusObjects(t, name) {
				total[o.Kind]++
				errs := objectErrors[display(o)]
				if loaded[o] && len(errs) == 0 {
					passed[o.Kind]++
				}
				if o.Kind != "Deployment" && o.Kind != "Service" {
					continue
				}
				for _, msg := range errs {
					msg = indexes.ReplaceAllString(msg, "[]")
					if reasons[msg] == nil {
						reasons[msg] = map[objects.ObjectID]bool{}
					}
					reasons[msg][o] = true
					occurrences[msg]++
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| kind | pass unchanged | of |\n| --- | ---: | ---: |\n")
	kinds := []string{"Deployment", "Service"}
	for k := range total {
		if k != "Deployment" && k != "Service" {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds[2:])
	for _, k := range kinds {
		fmt.Fprintf(&b, "| %s | %d (%.0f%%) | %d |\n", k, passed[k], 100*float64(passed[k])/float64(max(total[k], 1)), total[k])
	}
	sorted := make([]string, 0, len(reasons))
	for msg := range reasons {
		sorted = append(sorted, msg)
	}
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if len(reasons[a]) != len(reasons[b]) {
			return len(reasons[a]) > len(reasons[b])
		}
		if occurrences[a] != occurrences[b] {
			return occurrences[a] > occurrences[b]
		}
		return a < b
	})
	// An object's only reason is what alone keeps it out.
	why := map[objects.ObjectID][]string{}
	for msg, objs := range reasons {
		for o := range objs {
			why[o] = append(why[o], msg)
		}
	}
	fmt.Fprintf(&b, "\n| objects | only reason of | times | reason |\n| ---: | ---: | ---: | --- |\n")
	for _, msg := range sorted {
		only := 0
		for o := range reasons[msg] {
			if len(why[o]) == 1 {
				only++
			}
		}
		fmt.Fprintf(&b, "| %d | %d | %d | `%s` |\n", len(reasons[msg]), only, occurrences[msg], strings.ReplaceAll(msg, "|", `\|`))
	}
	fmt.Fprintf(&b, "\n| file | verdict |\n| --- | --- |\n%s\n", strings.Join(files, "\n"))
	t.Log(b.String())
	if total["Deployment"] < 30 || total["Service"] < 30 {
		t.Errorf("corpus of %d Deployments and %d Services; it was written with more", total["Deployment"], total["Service"])
	}
}

// indexes are list indexes in a path: the same field of another item is
// the same reason.
var indexes = regexp.MustCompile(`\[\d+\]`)

// loadWithin loads dir, failing the test if that takes longer than limit.
func loadWithin(t *testing.T, dir string, limit time.Duration) *Result {
	t.Helper()
	done := make(chan *Result, 1)
	go func() { done <- Load([]string{dir}) }()
	select {
	case res := <-done:
		return res
	case <-time.After(limit):
		t.Fatalf("loading %s took longer than %v", dir, limit)
		return nil
	}
}

// corpusObjects lists the objects of a corpus file as written, apart from
// what berth makes of them.
func corpusObjects(t *testing.T, name string) []objects.ObjectID {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []objects.ObjectID
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
		}
		if err := dec.Decode(&doc); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc.Kind == "" {
			continue
		}
		if doc.Metadata.Namespace == "" && doc.Kind != "Namespace" {
			doc.Metadata.Namespace = "default"
		}
		out = append(out, objects.ObjectID{Kind: doc.Kind, Namespace: doc.Metadata.Namespace, Name: doc.Metadata.Name})
	}
}
