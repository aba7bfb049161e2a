package schemas

import (
	"fmt"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	"github.com/berth/berth/schemas/diag"
	"go.yaml.in/yaml/v3"
)

// cueTask evaluates the .cue files of one directory as one package. Every
// concrete struct with apiVersion and kind reached from the top level
// (through regular fields and lists, not definitions or hidden fields) is an
// object; it is rendered as a YAML node tree with the CUE positions and then
// checked like any YAML document.
type cueTask struct {
	o        *options
	g        *gate
	cfg      *config
	names    []string // relative to g's root
	displays []string
}

func (t *cueTask) files() []string { return t.displays }

func (t *cueTask) run() fileResult {
	var fr fileResult
	srcs := make([][]byte, len(t.names))
	for i, name := range t.names {
		b, d := readFile(t.o, t.g, name, t.displays[i])
		if d != nil {
			fr.diags = append(fr.diags, *d)
		}
		srcs[i] = b
	}
	if len(fr.diags) > 0 {
		return fr
	}
	return loadCUE(t.cfg, t.displays, srcs)
}

// loadCUE evaluates CUE sources (the files of one directory) as one package.
func loadCUE(cfg *config, displays []string, srcs [][]byte) fileResult {
	var fr fileResult
	inst := build.NewContext().NewInstance("", nil)
	for i, b := range srcs {
		f, err := parser.ParseFile(displays[i], b, parser.ParseComments)
		if err != nil {
			// Later parse errors of a file are mostly echoes of the first.
			fr.diags = append(fr.diags, cueDiags(err, diag.RuleSyntax, displays[i], cue.Value{})[0])
			continue
		}
		for imp := range f.ImportSpecs() {
			if path, _ := strconv.Unquote(imp.Path.Value); strings.Contains(strings.Split(path, "/")[0], ".") {
				fr.diags = append(fr.diags, diag.Diagnostic{Severity: diag.Error, Position: cuePos(imp.Pos(), displays[i]), Rule: diag.RuleSyntax,
					Message: fmt.Sprintf("import %s: only CUE's standard library can be imported; config repos have no CUE modules", Excerpt(path))})
			}
		}
		if err := inst.AddSyntax(f); err != nil {
			fr.diags = append(fr.diags, cueDiags(err, diag.RuleSyntax, displays[i], cue.Value{})...)
		}
	}
	if len(fr.diags) > 0 || len(inst.Files) == 0 {
		return fr
	}
	v := cuecontext.New().BuildInstance(inst)
	if err := v.Err(); err != nil {
		fr.diags = append(fr.diags, cueDiags(err, diag.RuleSyntax, displays[0], v)...)
		return fr
	}
	w := &cueWalker{fallback: displays[0], root: v}
	w.walk(v, 0)
	fr.diags = append(fr.diags, w.diags...)
	for _, obj := range w.objects {
		doc, diags := loadDocument(cfg, obj.file, obj.node, obj.files)
		fr.diags = append(fr.diags, diags...)
		if doc != nil {
			fr.docs = append(fr.docs, doc)
		}
	}
	return fr
}

// cueMaxDepth bounds the search for objects; specs nest far less deeply.
const cueMaxDepth = 64

type cueObject struct {
	file  string
	node  *yaml.Node
	files map[*yaml.Node]string // a CUE object may span files
}

type cueWalker struct {
	root     cue.Value
	fallback string
	objects  []cueObject
	diags    []diag.Diagnostic
}

func (w *cueWalker) walk(v cue.Value, depth int) {
	if depth > cueMaxDepth {
		w.diags = append(w.diags, diag.Diagnostic{Severity: diag.Error, Position: cuePos(v.Pos(), w.fallback), Rule: diag.RuleIncomplete,
			Message: fmt.Sprintf("%s: nested more than %d levels deep; objects must be reachable in fewer", valuePath(v), cueMaxDepth)})
		return
	}
	switch v.IncompleteKind() {
	case cue.StructKind:
		if v.LookupPath(cue.MakePath(cue.Str("apiVersion"))).Exists() && v.LookupPath(cue.MakePath(cue.Str("kind"))).Exists() {
			w.object(v)
			return
		}
		it, err := v.Fields()
		if err != nil {
			w.diags = append(w.diags, cueDiags(err, diag.RuleIncomplete, w.fallback, w.root)...)
			return
		}
		for it.Next() {
			w.walk(it.Value(), depth+1)
		}
	case cue.ListKind:
		it, err := v.List()
		if err != nil {
			w.diags = append(w.diags, cueDiags(err, diag.RuleIncomplete, w.fallback, w.root)...)
			return
		}
		for it.Next() {
			w.walk(it.Value(), depth+1)
		}
	}
}

func (w *cueWalker) object(v cue.Value) {
	if err := v.Validate(cue.Concrete(true)); err != nil {
		w.diags = append(w.diags, cueDiags(err, diag.RuleIncomplete, w.fallback, w.root)...)
		return
	}
	obj := cueObject{file: cuePos(v.Pos(), w.fallback).File, files: map[*yaml.Node]string{}}
	n, err := obj.render(v)
	if err != nil {
		w.diags = append(w.diags, diag.Diagnostic{Severity: diag.Error, Position: cuePos(v.Pos(), w.fallback), Rule: diag.RuleIncomplete, Message: fmt.Sprintf("%s: %v", valuePath(v), err)})
		return
	}
	obj.node = n
	w.objects = append(w.objects, obj)
}

// render renders a concrete CUE value as the YAML node tree the checker
// reads, keeping each value's position in the user's CUE files.
func (o *cueObject) render(v cue.Value) (*yaml.Node, error) {
	v, _ = v.Default()
	p := v.Pos()
	n := &yaml.Node{Line: max(p.Line(), 1), Column: max(p.Column(), 1)}
	o.files[n] = o.file
	if p.IsValid() && p.Filename() != "" {
		o.files[n] = p.Filename()
	}
	switch v.Kind() {
	case cue.StructKind:
		n.Kind, n.Tag = yaml.MappingNode, "!!map"
		it, err := v.Fields()
		if err != nil {
			return nil, err
		}
		for it.Next() {
			fp := it.Value().Pos()
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: it.Selector().Unquoted(), Line: max(fp.Line(), n.Line), Column: max(fp.Column(), 1)}
			o.files[key] = o.files[n]
			if fp.IsValid() && fp.Filename() != "" {
				o.files[key] = fp.Filename()
			}
			val, err := o.render(it.Value())
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, key, val)
		}
	case cue.ListKind:
		n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
		it, err := v.List()
		if err != nil {
			return nil, err
		}
		for it.Next() {
			el, err := o.render(it.Value())
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, el)
		}
	case cue.StringKind:
		s, _ := v.String()
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", s
	case cue.IntKind:
		i, err := v.Int64()
		if err != nil {
			return nil, err
		}
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!int", strconv.FormatInt(i, 10)
	case cue.FloatKind:
		f, err := v.Float64()
		if err != nil {
			return nil, err
		}
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!float", strconv.FormatFloat(f, 'g', -1, 64)
	case cue.BoolKind:
		b, _ := v.Bool()
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(b)
	case cue.NullKind:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
	default:
		return nil, fmt.Errorf("%v values cannot appear in a spec", v.Kind())
	}
	return n, nil
}

// cuePath shows a CUE path whose labels are the user's.
func cuePath(labels []string) string {
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = shownLiteral(l)
	}
	return strings.Join(parts, ".")
}

func valuePath(v cue.Value) string {
	var labels []string
	for _, sel := range v.Path().Selectors() {
		labels = append(labels, sel.String())
	}
	return cuePath(labels)
}

func cuePos(p token.Pos, fallback string) diag.Position {
	if !p.IsValid() || p.Filename() == "" {
		return diag.Position{File: fallback, Line: 1, Column: 1}
	}
	return diag.Position{File: p.Filename(), Line: p.Line(), Column: p.Column()}
}

// cueDiags turns CUE errors into diagnostics at the first of their positions
// that is in the user's files. An error without one (a reference cycle) is
// placed where its path leads in root, when root is given.
func cueDiags(err error, rule, fallback string, root cue.Value) []diag.Diagnostic {
	var out []diag.Diagnostic
	seen := map[string]bool{}
	for _, e := range errors.Errors(err) {
		positions := append([]token.Pos{e.Position()}, e.InputPositions()...)
		if root.Exists() && len(e.Path()) > 0 {
			if p := cue.ParsePath(strings.Join(e.Path(), ".")); p.Err() == nil {
				positions = append(positions, root.LookupPath(p).Pos())
			}
		}
		pos := diag.Position{File: fallback, Line: 1, Column: 1}
		for _, p := range positions {
			if p.IsValid() && p.Filename() != "" {
				pos = cuePos(p, fallback)
				break
			}
		}
		// CUE's messages quote the user's values in their arguments.
		format, args := e.Msg()
		for i, a := range args {
			args[i] = shownArg{a}
		}
		msg := fmt.Sprintf(format, args...)
		if len(e.Path()) > 0 {
			msg = cuePath(e.Path()) + ": " + msg
		}
		if key := pos.String() + msg; !seen[key] {
			seen[key] = true
			out = append(out, diag.Diagnostic{Severity: diag.Error, Position: pos, Rule: rule, Message: msg})
		}
	}
	return out
}
