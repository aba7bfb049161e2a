package schemas

import (
	"bytes"
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
	Include     []string `yaml:"include"`
	Exclude     []string `yaml:"exclude"`
	IgnoreKinds []string `yaml:"ignoreKinds"`
}

func readConfig(abs, arg string) (*config, []Diagnostic) {
	cfg := &config{}
	display := displayPath(arg, configFile)
	b, err := os.ReadFile(filepath.Join(abs, configFile))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, []Diagnostic{fileDiag(display, "cannot read: %v", unwrapPathError(err))}
	}
	diag := func(line int, format string, args ...any) []Diagnostic {
		return []Diagnostic{{Severity: Error, Position: Position{File: display, Line: max(line, 1), Column: 1}, Rule: RuleConfig, Message: fmt.Sprintf(format, args...)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && err != io.EOF {
		d := yamlSyntax(display, b, err)
		d.Rule = RuleConfig
		d.Message = "berth.yaml: " + d.Message
		return &config{}, []Diagnostic{d}
	}
	for _, g := range append(slices.Clone(cfg.Include), cfg.Exclude...) {
		if !doublestar.ValidatePattern(g) {
			return &config{}, diag(lineOf(b, g), "berth.yaml: invalid glob %q", g)
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
