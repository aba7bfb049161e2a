package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// The CUE files under cue/ are the schema: the single source of truth for what
// berth accepts. Evaluating CUE once per object costs about half a millisecond,
// so at start-up berth compiles the definitions into a tree of Go constraints
// (schema) that checks YAML nodes directly. The compiler accepts only the CUE
// constructs the schemas use and refuses anything else, and
// checker_cue_test.go holds the checker to CUE's own unification.
// docs/validation.md has the reasoning.

//go:embed cue/*.cue
var cueFiles embed.FS

// CUEFiles returns the embedded schema files, by name, for tools that want to
// hand them to CUE itself (the differential tests, `cue vet` in bench/).
func CUEFiles() map[string][]byte {
	out := map[string][]byte{}
	entries, _ := fs.ReadDir(cueFiles, "cue")
	for _, e := range entries {
		b, _ := cueFiles.ReadFile("cue/" + e.Name())
		out[e.Name()] = b
	}
	return out
}

// kinds is a set of value kinds, as in CUE's kind lattice.
type kinds uint8

const (
	kString kinds = 1 << iota
	kInt
	kFloat
	kBool
	kNull
	kStruct
	kList

	kNumber = kInt | kFloat
	kAny    = kString | kNumber | kBool | kNull | kStruct | kList
)

func (k kinds) String() string {
	var names []string
	for _, n := range []struct {
		k    kinds
		name string
	}{{kString, "string"}, {kInt, "int"}, {kFloat, "float"}, {kBool, "bool"}, {kNull, "null"}, {kStruct, "struct"}, {kList, "list"}} {
		if k&n.k != 0 {
			names = append(names, n.name)
		}
	}
	if k&kNumber == kNumber {
		names = append([]string{"number"}, slicesWithout(names, "int", "float")...)
	}
	return strings.Join(names, " or ")
}

func slicesWithout(s []string, drop ...string) []string {
	var out []string
outer:
	for _, x := range s {
		for _, d := range drop {
			if x == d {
				continue outer
			}
		}
		out = append(out, x)
	}
	return out
}

// constraint is one scalar test: a regular expression, a bound, a literal.
type constraint struct {
	op   token.Token // MAT, NMAT, GEQ, GTR, LEQ, LSS, NEQ, EQL; ILLEGAL for maxRunes
	re   *regexp.Regexp
	memo *matchMemo // re's results on short strings
	num  float64
	lit  any // EQL and NEQ: the literal
	max  int // maxRunes
}

// schema is one compiled CUE value: a disjunction (alts), or a conjunction of
// a kind set, scalar constraints and, for structs and lists, their members.
type schema struct {
	src  string // CUE text, for messages
	name string // definition name when the whole value is one, e.g. #DNSLabel
	doc  string // the definition's doc comment, for messages

	alts []*schema // a disjunction when non-nil
	def  int       // index of the default in alts, -1 when none

	kinds  kinds
	checks []constraint

	fields   []*field // structs: declared fields, in order
	patterns []pattern
	conds    []cond

	elem     *schema // lists: type of the remaining elements
	minItems int     // lists: elements that [T, ...T] requires
}

type field struct {
	name     string
	optional bool
	s        *schema
}

type pattern struct{ key, val *schema }

// cond is `if sibling == literal { fields }`: the fields exist only when the
// sibling's final value (data or default) equals the literal.
type cond struct {
	sibling string
	equals  any
	fields  []*field
}

func (s *schema) isStruct() bool { return s.fields != nil || s.patterns != nil || s.conds != nil }

// compiler turns the definitions of one CUE package into schemas.
type compiler struct {
	decls map[string]*ast.Field // top-level definitions by name
	done  map[string]*schema
	busy  map[string]bool
}

// compileSchemas parses the embedded CUE files and compiles every top-level
// definition. An unsupported construct is an error naming its position.
func compileSchemas(files map[string][]byte) (map[string]*schema, error) {
	c := &compiler{decls: map[string]*ast.Field{}, done: map[string]*schema{}, busy: map[string]bool{}}
	for name, src := range files {
		f, err := parser.ParseFile(name, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.Field:
				name, _, err := ast.LabelName(d.Label)
				if err != nil || !strings.HasPrefix(name, "#") {
					return nil, fmt.Errorf("%s: only definitions may stand at the top level", d.Pos())
				}
				c.decls[name] = d
			case *ast.Package, *ast.ImportDecl:
			default:
				return nil, fmt.Errorf("%s: unsupported declaration %T", d.Pos(), d)
			}
		}
	}
	for name := range c.decls {
		if _, err := c.def(name); err != nil {
			return nil, err
		}
	}
	return c.done, nil
}

func (c *compiler) def(name string) (*schema, error) {
	if s, ok := c.done[name]; ok {
		return s, nil
	}
	d, ok := c.decls[name]
	if !ok {
		return nil, fmt.Errorf("undefined definition %s", name)
	}
	if c.busy[name] {
		return nil, fmt.Errorf("%s: recursive definition %s is not supported", d.Pos(), name)
	}
	c.busy[name] = true
	s, err := c.expr(d.Value)
	if err != nil {
		return nil, err
	}
	named := *s
	named.name = name
	named.doc = docText(d)
	c.done[name] = &named
	return &named, nil
}

func docText(n ast.Node) string {
	var lines []string
	for _, cg := range ast.Comments(n) {
		if cg.Doc {
			for _, cm := range cg.List {
				lines = append(lines, strings.TrimSpace(strings.TrimPrefix(cm.Text, "//")))
			}
		}
	}
	return strings.Join(lines, " ")
}

func srcOf(e ast.Node) string {
	b, err := format.Node(e)
	if err != nil {
		return fmt.Sprintf("%T", e)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func (c *compiler) expr(e ast.Expr) (*schema, error) {
	s, err := c.expr1(e)
	if err != nil {
		return nil, err
	}
	if s.src == "" {
		s.src = srcOf(e)
	}
	return s, nil
}

func (c *compiler) expr1(e ast.Expr) (*schema, error) {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return c.expr(e.X)
	case *ast.Ident:
		switch e.Name {
		case "string":
			return &schema{kinds: kString, def: -1}, nil
		case "int":
			return &schema{kinds: kInt, def: -1}, nil
		case "number":
			return &schema{kinds: kNumber, def: -1}, nil
		case "bool":
			return &schema{kinds: kBool, def: -1}, nil
		case "_":
			// Any value, as in CUE: structs and lists of anything, at any
			// depth (status.loadBalancer.ingress under status's `[string]: _`).
			top := &schema{kinds: kAny, def: -1}
			top.patterns = []pattern{{key: &schema{kinds: kString, def: -1}, val: top}}
			top.elem = top
			return top, nil
		}
		if strings.HasPrefix(e.Name, "#") {
			return c.def(e.Name)
		}
	case *ast.BasicLit:
		if e.Kind == token.NULL {
			return &schema{kinds: kNull, def: -1}, nil // one value: the kind says it
		}
		v, k, err := literal(e)
		if err != nil {
			return nil, err
		}
		return &schema{kinds: k, def: -1, checks: []constraint{{op: token.EQL, lit: v}}}, nil
	case *ast.UnaryExpr:
		return c.unary(e)
	case *ast.BinaryExpr:
		switch e.Op {
		case token.OR:
			return c.disjunction(e)
		case token.AND:
			x, err := c.expr(e.X)
			if err != nil {
				return nil, err
			}
			y, err := c.expr(e.Y)
			if err != nil {
				return nil, err
			}
			return conjoin(x, y, e)
		}
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && srcOf(sel) == "strings.MaxRunes" && len(e.Args) == 1 {
			if lit, ok := e.Args[0].(*ast.BasicLit); ok {
				n, err := strconv.Atoi(lit.Value)
				if err == nil {
					return &schema{kinds: kString, def: -1, checks: []constraint{{op: token.ILLEGAL, max: n}}}, nil
				}
			}
		}
	case *ast.StructLit:
		return c.structLit(e)
	case *ast.ListLit:
		return c.list(e)
	}
	return nil, fmt.Errorf("%s: unsupported CUE expression %s", e.Pos(), srcOf(e))
}

func literal(e *ast.BasicLit) (any, kinds, error) {
	switch e.Kind {
	case token.STRING:
		s, err := strconv.Unquote(e.Value)
		return s, kString, err
	case token.INT:
		n, err := strconv.ParseInt(strings.ReplaceAll(e.Value, "_", ""), 0, 64)
		return n, kInt, err
	case token.FLOAT:
		f, err := strconv.ParseFloat(e.Value, 64)
		return f, kFloat, err
	case token.TRUE, token.FALSE:
		return e.Kind == token.TRUE, kBool, nil
	}
	return nil, 0, fmt.Errorf("%s: unsupported literal %s", e.Pos(), e.Value)
}

func (c *compiler) unary(e *ast.UnaryExpr) (*schema, error) {
	if e.Op == token.MUL {
		return nil, fmt.Errorf("%s: a default (*) is only supported inside a disjunction", e.Pos())
	}
	lit, ok := e.X.(*ast.BasicLit)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported operand of %s", e.Pos(), e.Op)
	}
	v, k, err := literal(lit)
	if err != nil {
		return nil, err
	}
	switch e.Op {
	case token.MAT, token.NMAT:
		re, err := regexp.Compile(v.(string))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", e.Pos(), err)
		}
		return &schema{kinds: kString, def: -1, checks: []constraint{{op: e.Op, re: re, memo: &matchMemo{m: map[string]bool{}}}}}, nil
	case token.GEQ, token.GTR, token.LEQ, token.LSS:
		if k&kNumber == 0 {
			return nil, fmt.Errorf("%s: bounds are only supported on numbers", e.Pos())
		}
		return &schema{kinds: kNumber, def: -1, checks: []constraint{{op: e.Op, num: toFloat(v)}}}, nil
	case token.NEQ:
		return &schema{kinds: kAny, def: -1, checks: []constraint{{op: token.NEQ, lit: v}}}, nil
	}
	return nil, fmt.Errorf("%s: unsupported operator %s", e.Pos(), e.Op)
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// disjunction flattens a | b | c, noting which alternative is the default.
func (c *compiler) disjunction(e *ast.BinaryExpr) (*schema, error) {
	var terms []ast.Expr
	var flatten func(ast.Expr)
	flatten = func(x ast.Expr) {
		if b, ok := x.(*ast.BinaryExpr); ok && b.Op == token.OR {
			flatten(b.X)
			flatten(b.Y)
			return
		}
		terms = append(terms, x)
	}
	flatten(e)
	out := &schema{def: -1}
	for _, t := range terms {
		isDefault := false
		if u, ok := t.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			isDefault, t = true, u.X
		}
		s, err := c.expr(t)
		if err != nil {
			return nil, err
		}
		if isDefault {
			if out.def >= 0 {
				return nil, fmt.Errorf("%s: more than one default", t.Pos())
			}
			if _, ok := s.concrete(); !ok {
				return nil, fmt.Errorf("%s: a default must be a concrete literal", t.Pos())
			}
			out.def = len(out.alts)
		}
		out.alts = append(out.alts, s)
	}
	return out, nil
}

// conjoin computes x & y for the shapes the schemas use: constraints on one
// scalar, or a disjunction distributed over a scalar.
func conjoin(x, y *schema, at ast.Node) (*schema, error) {
	if x.alts != nil || y.alts != nil {
		if y.alts != nil {
			x, y = y, x
		}
		out := &schema{def: x.def}
		for _, a := range x.alts {
			s, err := conjoin(a, y, at)
			if err != nil {
				return nil, err
			}
			out.alts = append(out.alts, s)
		}
		return out, nil
	}
	if (x.isStruct() || x.elem != nil) && (y.isStruct() || y.elem != nil) {
		return nil, fmt.Errorf("%s: unifying two structs or lists is not supported", at.Pos())
	}
	out := *x
	out.name, out.doc, out.src = "", "", ""
	out.kinds = x.kinds & y.kinds
	if out.kinds == 0 {
		return nil, fmt.Errorf("%s: %s and %s have no kind in common", at.Pos(), x.kinds, y.kinds)
	}
	out.checks = append(append([]constraint{}, x.checks...), y.checks...)
	if y.isStruct() || y.elem != nil {
		out.fields, out.patterns, out.conds, out.elem, out.minItems = y.fields, y.patterns, y.conds, y.elem, y.minItems
	}
	return &out, nil
}

func (c *compiler) structLit(e *ast.StructLit) (*schema, error) {
	out := &schema{kinds: kStruct, def: -1, fields: []*field{}}
	for _, d := range e.Elts {
		switch d := d.(type) {
		case *ast.Field:
			if l, ok := d.Label.(*ast.ListLit); ok && len(l.Elts) == 1 {
				k, err := c.expr(l.Elts[0])
				if err != nil {
					return nil, err
				}
				v, err := c.expr(d.Value)
				if err != nil {
					return nil, err
				}
				out.patterns = append(out.patterns, pattern{key: k, val: v})
				continue
			}
			f, err := c.field(d)
			if err != nil {
				return nil, err
			}
			out.fields = append(out.fields, f)
		case *ast.Comprehension:
			cd, err := c.condition(d)
			if err != nil {
				return nil, err
			}
			out.conds = append(out.conds, cd)
		default:
			return nil, fmt.Errorf("%s: unsupported struct element %T", d.Pos(), d)
		}
	}
	return out, nil
}

func (c *compiler) field(d *ast.Field) (*field, error) {
	name, _, err := ast.LabelName(d.Label)
	if err != nil {
		return nil, fmt.Errorf("%s: unsupported label", d.Pos())
	}
	if d.Constraint == token.NOT {
		return nil, fmt.Errorf("%s: required fields (!) are not supported; a regular field is required", d.Pos())
	}
	s, err := c.expr(d.Value)
	if err != nil {
		return nil, err
	}
	return &field{name: name, optional: d.Constraint == token.OPTION, s: s}, nil
}

func (c *compiler) condition(d *ast.Comprehension) (cond, error) {
	bad := fmt.Errorf("%s: only `if field == literal { ... }` comprehensions are supported", d.Pos())
	if len(d.Clauses) != 1 || d.Fallback != nil {
		return cond{}, bad
	}
	ifc, ok := d.Clauses[0].(*ast.IfClause)
	if !ok {
		return cond{}, bad
	}
	cmp, ok := ifc.Condition.(*ast.BinaryExpr)
	if !ok || cmp.Op != token.EQL {
		return cond{}, bad
	}
	id, ok1 := cmp.X.(*ast.Ident)
	lit, ok2 := cmp.Y.(*ast.BasicLit)
	if !ok1 || !ok2 {
		return cond{}, bad
	}
	v, _, err := literal(lit)
	if err != nil {
		return cond{}, err
	}
	body, ok := d.Value.(*ast.StructLit)
	if !ok {
		return cond{}, bad
	}
	s, err := c.structLit(body)
	if err != nil {
		return cond{}, err
	}
	if s.patterns != nil || s.conds != nil {
		return cond{}, bad
	}
	return cond{sibling: id.Name, equals: v, fields: s.fields}, nil
}

// list compiles [...T] and [T, ...T] (a list that needs at least one T).
func (c *compiler) list(e *ast.ListLit) (*schema, error) {
	out := &schema{kinds: kList, def: -1}
	var first, rest ast.Expr
	for i, el := range e.Elts {
		if ell, ok := el.(*ast.Ellipsis); ok {
			if i != len(e.Elts)-1 || ell.Type == nil {
				return nil, fmt.Errorf("%s: only [...T] and [T, ...T] lists are supported", e.Pos())
			}
			s, err := c.expr(ell.Type)
			if err != nil {
				return nil, err
			}
			out.elem, rest = s, ell.Type
			continue
		}
		if i > 0 {
			return nil, fmt.Errorf("%s: only [...T] and [T, ...T] lists are supported", e.Pos())
		}
		first = el
	}
	if out.elem == nil {
		return nil, fmt.Errorf("%s: closed lists are not supported", e.Pos())
	}
	if first != nil {
		if srcOf(first) != srcOf(rest) {
			return nil, fmt.Errorf("%s: in [T, ...T] both types must be the same", e.Pos())
		}
		out.minItems = 1
	}
	return out, nil
}

// concrete returns the value a schema stands for when it admits exactly one:
// a literal, or a disjunction's default.
func (s *schema) concrete() (any, bool) {
	if s.alts != nil {
		if s.def < 0 {
			return nil, false
		}
		return s.alts[s.def].concrete()
	}
	for _, c := range s.checks {
		if c.op == token.EQL {
			return c.lit, true
		}
	}
	return nil, false
}
