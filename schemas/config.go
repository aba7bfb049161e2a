package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/bmatcuk/doublestar/v4"
	"go.yaml.in/yaml/v3"
)

// configFile at a repository's root narrows what the loader reads.
const configFile = "berth.yaml"

// config is berth.yaml:
//
//	include: ["apps/**"]        # globs of files to read (default: all)
//	exclude: ["apps/legacy/**"] # globs of files or directories to skip
//	ignoreKinds: ["Kustomization"]  # kinds of other tools, skipped silently
type config struct {
	Include     []string `json:"include"`
	Exclude     []string `json:"exclude"`
	IgnoreKinds []string `json:"ignoreKinds"`
}

// readConfig reads berth.yaml, checked against #RepoConfig like any spec.
// A nil config means berth.yaml is invalid and nothing below it is read:
// what to read is exactly what it got wrong.
func readConfig(abs, arg string) (*config, []Diagnostic) {
	display := displayPath(arg, configFile)
	b, err := os.ReadFile(filepath.Join(abs, configFile))
	if errors.Is(err, os.ErrNotExist) {
		return &config{}, nil
	}
	if err != nil {
		return nil, []Diagnostic{fileDiag(display, "cannot read: %v", unwrapPathError(err))}
	}
	var n yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&n); err != nil && err != io.EOF {
		return nil, []Diagnostic{yamlSyntax(display, b, err)}
	}
	if len(n.Content) == 0 {
		return &config{}, nil
	}
	schemas, err := schemaSet()
	if err != nil {
		panic(err)
	}
	c := newChecker(display)
	v := c.value(schemas["#RepoConfig"], n.Content[0], nil)
	if len(c.diags) > 0 {
		for i := range c.diags {
			c.diags[i].Rule = RuleConfig
			c.diags[i].Message = "berth.yaml: " + c.diags[i].Message
		}
		return nil, c.diags
	}
	cfg := &config{}
	js, _ := json.Marshal(v)
	if err := json.Unmarshal(js, cfg); err != nil {
		return nil, []Diagnostic{fileDiag(display, "internal error: %v", err)}
	}
	for _, g := range append(slices.Clone(cfg.Include), cfg.Exclude...) {
		if !doublestar.ValidatePattern(g) {
			return nil, []Diagnostic{{Severity: Error, Position: Position{File: display, Line: lineOf(b, g), Column: 1}, Rule: RuleConfig,
				Message: fmt.Sprintf("berth.yaml: invalid glob %q", g)}}
		}
	}
	return cfg, nil
}

func lineOf(b []byte, s string) int {
	i := bytes.Index(b, []byte(s))
	if i < 0 {
		return 1
	}
	return 1 + bytes.Count(b[:i], []byte{'\n'})
}

func (c *config) included(rel string) bool {
	if c.excluded(rel) {
		return false
	}
	if len(c.Include) == 0 {
		return true
	}
	return matchAny(c.Include, rel)
}

func (c *config) excluded(rel string) bool {
	return matchAny(c.Exclude, rel)
}

func matchAny(globs []string, rel string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, rel); ok {
			return true
		}
	}
	return false
}

func (c *config) ignoresKind(kind string) bool {
	return c != nil && slices.Contains(c.IgnoreKinds, kind)
}
