package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/berth/berth/schemas/diag"
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
//	allowEmpty: true            # a repository without objects may be applied
//	allowedHostPaths:           # what hostPath volumes may reach (default: nothing)
//	  - pathPrefix: /var/log
//	    readOnly: true
type config struct {
	Include          []string       `json:"include"`
	Exclude          []string       `json:"exclude"`
	IgnoreKinds      []string       `json:"ignoreKinds"`
	AllowEmpty       bool           `json:"allowEmpty"`
	AllowedHostPaths []hostPathRule `json:"allowedHostPaths"`

	// file is berth.yaml as diagnostics name it, "" without one.
	file string
	// pos is where berth.yaml sets each entry of include, exclude and
	// ignoreKinds; the hits say which entries matched anything, for the
	// warnings about those that did not. The walk marks globs from one
	// goroutine, the parallel checks mark kinds.
	pos                    map[string][]diag.Position
	includeHit, excludeHit []bool
	kindHit                []atomic.Bool
}

func newConfig(file string) *config {
	return &config{file: file, pos: map[string][]diag.Position{}}
}

// readConfig reads berth.yaml through the gate, checked against #RepoConfig
// like any spec. A nil config means berth.yaml is invalid (or a link out of
// the repository) and nothing below it is read: what to read is exactly
// what it got wrong.
func readConfig(o *options, g *gate, arg string) (*config, []diag.Diagnostic) {
	display := displayPath(arg, configFile)
	if _, err := g.root.Lstat(configFile); errors.Is(err, fs.ErrNotExist) {
		return newConfig(""), nil
	}
	b, d := readFile(o, g, configFile, display)
	if d != nil {
		return nil, []diag.Diagnostic{*d}
	}
	cfg := newConfig(display)
	var n yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&n); err != nil && err != io.EOF {
		return nil, []diag.Diagnostic{yamlSyntax(display, b, err)}
	}
	if len(n.Content) == 0 {
		return cfg, nil
	}
	schemas, err := schemaSet()
	if err != nil {
		panic(err)
	}
	c := newChecker(display)
	c.berthOwn = true
	v := c.value(schemas["#RepoConfig"], n.Content[0], nil)
	if len(c.diags) > 0 {
		for i := range c.diags {
			c.diags[i].Rule = diag.RuleConfig
			c.diags[i].Message = "berth.yaml: " + c.diags[i].Message
		}
		return nil, c.diags
	}
	js, _ := json.Marshal(v)
	if err := json.Unmarshal(js, cfg); err != nil {
		return nil, []diag.Diagnostic{fileDiag(display, "internal error: %v", err)}
	}
	for _, field := range []string{"include", "exclude", "ignoreKinds"} {
		if list := mapGet(n.Content[0], field); list != nil {
			for list.Kind == yaml.AliasNode && list.Alias != nil {
				list = list.Alias
			}
			for _, item := range list.Content {
				cfg.pos[field] = append(cfg.pos[field], c.pos(item))
			}
		}
	}
	for field, globs := range map[string][]string{"include": cfg.Include, "exclude": cfg.Exclude} {
		for i, g := range globs {
			if !doublestar.ValidatePattern(g) {
				return nil, []diag.Diagnostic{{Severity: diag.Error, Position: cfg.at(field, i), Rule: diag.RuleConfig,
					Message: fmt.Sprintf("berth.yaml: invalid glob %s", Excerpt(g))}}
			}
		}
	}
	cfg.includeHit = make([]bool, len(cfg.Include))
	cfg.excludeHit = make([]bool, len(cfg.Exclude))
	cfg.kindHit = make([]atomic.Bool, len(cfg.IgnoreKinds))
	return cfg, nil
}

// hostPathRule lets hostPath volumes reach pathPrefix and below, as
// PodSecurityPolicy's allowedHostPaths did: read-only, or not.
type hostPathRule struct {
	PathPrefix string `json:"pathPrefix"`
	ReadOnly   bool   `json:"readOnly"`
}

// hostPathRule is the rule that lets a hostPath volume reach path: the
// longest prefix, compared by whole path elements (/var/log allows
// /var/log/app, not /var/logs). A path is compared as written, so one
// with "." or ".." elements, or a trailing slash, is refused before.
func (c *config) hostPathRule(path string) (hostPathRule, bool) {
	var best hostPathRule
	found := false
	if c == nil {
		return best, false
	}
	for _, r := range c.AllowedHostPaths {
		prefix := strings.TrimSuffix(filepath.Clean(r.PathPrefix), "/")
		if (path == prefix || strings.HasPrefix(path, prefix+"/")) && (!found || len(prefix) > len(best.PathPrefix)) {
			best, found = hostPathRule{PathPrefix: prefix, ReadOnly: r.ReadOnly}, true
		}
	}
	if best.PathPrefix == "" && found {
		best.PathPrefix = "/"
	}
	return best, found
}

// at is where berth.yaml sets entry i of field.
func (c *config) at(field string, i int) diag.Position {
	if i < len(c.pos[field]) {
		return c.pos[field][i]
	}
	return diag.Position{File: c.file, Line: 1, Column: 1}
}

func (c *config) included(rel string) bool {
	if c.excluded(rel) {
		return false
	}
	if len(c.Include) == 0 {
		return true
	}
	return match(c.Include, c.includeHit, rel)
}

func (c *config) excluded(rel string) bool {
	return match(c.Exclude, c.excludeHit, rel)
}

// match reports whether rel matches any of globs, marking every glob that
// does.
func match(globs []string, hit []bool, rel string) bool {
	any := false
	for i, g := range globs {
		if ok, _ := doublestar.Match(g, rel); ok {
			hit[i], any = true, true
		}
	}
	return any
}

// ignoresKind reports whether an ignoreKinds entry names kind: as the kind
// alone ("Kustomization"), or with its group or group/version
// ("kustomize.config.k8s.io Kustomization", "rbac.authorization.k8s.io/v1
// Role"; "v1 Secret" for the core group).
func (c *config) ignoresKind(apiVersion, kind string) bool {
	if c == nil {
		return false
	}
	group, _, _ := strings.Cut(apiVersion, "/")
	any := false
	for i, k := range c.IgnoreKinds {
		f := strings.Fields(k)
		if len(f) == 1 && f[0] == kind || len(f) == 2 && f[1] == kind && (f[0] == apiVersion || f[0] == group) {
			c.kindHit[i].Store(true)
			any = true
		}
	}
	return any
}

// unused warns of each entry that matched nothing: a glob with a typo, or
// a directory that moved, silently loads less (or more) than intended.
func (c *config) unused() []diag.Diagnostic {
	var out []diag.Diagnostic
	warn := func(field string, i int, format string, args ...any) {
		out = append(out, diag.Diagnostic{Severity: diag.Warning, Position: c.at(field, i), Rule: diag.RuleConfig, Message: "berth.yaml: " + fmt.Sprintf(format, args...)})
	}
	for i, g := range c.Include {
		if !c.includeHit[i] {
			warn("include", i, "include %s matches no file the loader reads", Excerpt(g))
		}
	}
	for i, g := range c.Exclude {
		if !c.excludeHit[i] {
			warn("exclude", i, "exclude %s matches no file or directory", Excerpt(g))
		}
	}
	for i, k := range c.IgnoreKinds {
		if !c.kindHit[i].Load() {
			warn("ignoreKinds", i, "ignoreKinds %s: no document has this kind", Excerpt(k))
		}
	}
	return out
}

// empty is the error for a repository without objects: applying it would
// remove every object from the cluster, which a deleted directory or an
// include that no longer matches does as surely as intent does.
func (c *config) empty(dir string) diag.Diagnostic {
	at := c.file
	if at == "" {
		at = dir
	}
	return diag.Diagnostic{Severity: diag.Error, Position: diag.Position{File: at, Line: 1, Column: 1}, Rule: diag.RuleConfig,
		Message: "no objects: applying this would remove every object from the cluster; if that is intended, set allowEmpty: true in berth.yaml"}
}
