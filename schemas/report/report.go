// Package report writes the loader's diagnostics in the formats CI systems
// read: plain text, JSON, JUnit XML, GitHub workflow commands and SARIF.
package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/berth/berth/schemas"
	"github.com/berth/berth/schemas/diag"
)

// Formats lists the names Write accepts.
var Formats = []string{"text", "json", "junit", "github", "sarif"}

// Write renders res in the named format; version is berth's, which SARIF
// names its tool by.
func Write(w io.Writer, format string, res *schemas.Result, version string) error {
	switch format {
	case "text":
		return writeText(w, res)
	case "json":
		return writeJSON(w, res)
	case "junit":
		return writeJUnit(w, res)
	case "github":
		return writeGitHub(w, res)
	case "sarif":
		return writeSARIF(w, res, version)
	}
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// Summary is the closing line of the text output.
func Summary(res *schemas.Result) string {
	return fmt.Sprintf("%s, %s, %s, %s", plural(len(res.Files), "file"), plural(len(res.Objects), "object"),
		plural(res.Errors(), "error"), plural(res.Warnings(), "warning"))
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func writeText(w io.Writer, res *schemas.Result) error {
	for _, d := range res.Diagnostics {
		fmt.Fprintln(w, d)
		for _, r := range d.Related {
			fmt.Fprintf(w, "%s: note: %s\n", r.Position, r.Message)
		}
	}
	_, err := fmt.Fprintln(w, Summary(res))
	return err
}

func writeJSON(w io.Writer, res *schemas.Result) error {
	out := struct {
		Files       int               `json:"files"`
		Objects     int               `json:"objects"`
		Errors      int               `json:"errors"`
		Warnings    int               `json:"warnings"`
		Diagnostics []diag.Diagnostic `json:"diagnostics"`
	}{len(res.Files), len(res.Objects), res.Errors(), res.Warnings(), res.Diagnostics}
	if out.Diagnostics == nil {
		out.Diagnostics = []diag.Diagnostic{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// JUnit: one test case per file, failing with its errors; warnings go to
// the case's system-out, so a CI test view shows them without failing.
func writeJUnit(w io.Writer, res *schemas.Result) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		SystemOut string   `xml:"system-out,omitempty"`
	}
	type testsuite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Errors   int        `xml:"errors,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	byFile := map[string][]diag.Diagnostic{}
	files := slices.Clone(res.Files)
	for _, d := range res.Diagnostics {
		if _, ok := byFile[d.File]; !ok && !slices.Contains(files, d.File) {
			files = append(files, d.File)
		}
		byFile[d.File] = append(byFile[d.File], d)
	}
	sort.Strings(files)
	suite := testsuite{Name: "berth validate", Tests: len(files)}
	for _, f := range files {
		tc := testcase{Name: f, Classname: "berth.validate"}
		var errs, warns []string
		for _, d := range byFile[f] {
			if d.Severity == diag.Error {
				errs = append(errs, d.String())
			} else {
				warns = append(warns, d.String())
			}
		}
		if len(errs) > 0 {
			suite.Failures++
			tc.Failure = &failure{Message: plural(len(errs), "error"), Type: "berth.validate", Text: strings.Join(errs, "\n")}
		}
		tc.SystemOut = strings.Join(warns, "\n")
		suite.Cases = append(suite.Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(suite); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// GitHub workflow commands annotate the pull request's diff in place.
func writeGitHub(w io.Writer, res *schemas.Result) error {
	for _, d := range res.Diagnostics {
		level := "error"
		if d.Severity == diag.Warning {
			level = "warning"
		}
		fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d,title=%s::%s\n", level, ghProperty(d.File), d.Line, d.Column,
			ghProperty("berth "+d.Rule), ghData(d.Message))
	}
	_, err := fmt.Fprintln(w, Summary(res))
	return err
}

func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
