package report

import (
	"encoding/json"
	"io"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth/berth/schemas"
	"github.com/berth/berth/schemas/diag"
)

// SARIF 2.1.0, as GitHub code scanning and most security dashboards read it.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string       `json:"id"`
	ShortDescription sarifMessage `json:"shortDescription"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID           string          `json:"ruleId"`
	Level            string          `json:"level"`
	Message          sarifMessage    `json:"message"`
	Locations        []sarifLocation `json:"locations"`
	RelatedLocations []sarifLocation `json:"relatedLocations,omitempty"`
}

type sarifLocation struct {
	ID               int                   `json:"id,omitempty"`
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
	Message          *sarifMessage         `json:"message,omitempty"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
}

var ruleText = map[string]string{
	diag.RuleFile:       "The file cannot be read as a text spec inside the repository.",
	diag.RuleSyntax:     "The file is not valid YAML, JSON or CUE.",
	diag.RuleConfig:     "berth.yaml is invalid.",
	diag.RuleKind:       "The document is not an object of a supported apiVersion and kind.",
	diag.RuleSchema:     "A field does not satisfy its CUE schema.",
	diag.RuleIncomplete: "A CUE value never becomes concrete.",
	diag.RuleDuplicate:  "Two objects share kind, namespace and name.",
	diag.RuleSelector:   "A selector does not select what it should.",
	diag.RuleReference:  "A reference names something the repository does not define.",
	diag.RuleUnique:     "A name that must be unique within an object is repeated.",
	diag.RuleTargetPort: "A Service's named targetPort is not declared by the pods it selects.",
}

func location(p diag.Position, msg string) sarifLocation {
	l := sarifLocation{PhysicalLocation: sarifPhysicalLocation{
		ArtifactLocation: sarifArtifact{URI: fileURI(p.File)},
		Region:           sarifRegion{StartLine: p.Line, StartColumn: p.Column},
	}}
	if msg != "" {
		l.Message = &sarifMessage{Text: msg}
	}
	return l
}

// fileURI writes a file path as the relative URI reference SARIF wants:
// each segment percent-encoded (a space, #, ? or % in a file name would
// otherwise be read as part of the URI's syntax).
func fileURI(file string) string {
	segs := strings.Split(filepath.ToSlash(file), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func writeSARIF(w io.Writer, res *schemas.Result, version string) error {
	run := sarifRun{
		Tool:    sarifTool{Driver: sarifDriver{Name: "berth", Version: version, InformationURI: "https://github.com/berth/berth"}},
		Results: []sarifResult{},
	}
	used := map[string]bool{}
	for _, d := range res.Diagnostics {
		used[d.Rule] = true
		r := sarifResult{RuleID: d.Rule, Level: string(d.Severity), Message: sarifMessage{Text: d.Message},
			Locations: []sarifLocation{location(d.Position, "")}}
		for i, rel := range d.Related {
			l := location(rel.Position, rel.Message)
			l.ID = i + 1
			r.RelatedLocations = append(r.RelatedLocations, l)
		}
		run.Results = append(run.Results, r)
	}
	run.Tool.Driver.Rules = []sarifRule{}
	for id := range used {
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{ID: id, ShortDescription: sarifMessage{Text: ruleText[id]}})
	}
	sort.Slice(run.Tool.Driver.Rules, func(i, j int) bool { return run.Tool.Driver.Rules[i].ID < run.Tool.Driver.Rules[j].ID })
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}})
}
