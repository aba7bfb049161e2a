package schemas

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"cuelang.org/go/cue/token"
	"github.com/berth/berth/schemas/diag"
	"go.yaml.in/yaml/v3"
)

// maxNodes bounds how many YAML nodes one document may expand to through
// aliases, so a "billion laughs" document is an error, not an out-of-memory.
const maxNodes = 200_000

// checker validates one YAML document against a schema and returns the
// value with CUE's defaults filled in. Errors go to diags with the position
// of the offending node in the user's file.
type checker struct {
	file   string
	files  map[*yaml.Node]string // per-node files, for CUE objects
	diags  []diag.Diagnostic
	object string
	path   []string
	budget int
	// quiet > 0 while trying the alternatives of a disjunction: errors only
	// mark failed.
	quiet  int
	failed bool
	// berthOwn: the file is berth's own (berth.yaml), where an unknown
	// field is a typo, not a Kubernetes field berth lacks.
	berthOwn bool
	// cfg is the berth.yaml of the object's repository.
	cfg *config
}

func newChecker(file string) *checker { return &checker{file: file, budget: maxNodes} }

func (c *checker) pos(n *yaml.Node) diag.Position {
	file := c.file
	if f, ok := c.files[n]; ok {
		file = f
	}
	return diag.Position{File: file, Line: n.Line, Column: n.Column}
}

func (c *checker) pathString() string {
	var b strings.Builder
	for _, p := range c.path {
		if !strings.HasPrefix(p, "[") && b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func (c *checker) errorf(n *yaml.Node, rule, format string, args ...any) {
	c.failed = true
	if c.quiet > 0 {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if p := c.pathString(); p != "" {
		msg = p + ": " + msg
	}
	c.diags = append(c.diags, diag.Diagnostic{Severity: diag.Error, Position: c.pos(n), Rule: rule, Message: msg, Object: c.object})
}

// deref follows aliases and charges the node budget.
func (c *checker) deref(n *yaml.Node) (*yaml.Node, bool) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	c.budget--
	if c.budget == 0 {
		c.quiet = 0
		c.errorf(n, diag.RuleSyntax, "document expands to more than %d nodes (YAML aliases?)", maxNodes)
	}
	return n, c.budget > 0
}

func isNull(n *yaml.Node) bool {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// yaml11Octal is how a YAML 1.1 octal looks, 8 and 9 included: yaml.v3
// falls back to a float for `0089`, which CUE (and most decoders) read as a
// string.
var yaml11Octal = regexp.MustCompile(`^[-+]?0[0-9_]+$`)

// scalar decodes a YAML scalar into the value CUE would see.
func scalar(n *yaml.Node) (any, kinds, error) {
	tag := n.ShortTag()
	if tag == "!!float" && n.Style&yaml.TaggedStyle == 0 && yaml11Octal.MatchString(n.Value) {
		tag = "!!str"
	}
	switch tag {
	case "!!str", "!!timestamp", "!!binary":
		return n.Value, kString, nil
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			return nil, 0, fmt.Errorf("integer %s does not fit in 64 bits", shown(n.Value))
		}
		return v, kInt, nil
	case "!!float":
		var v float64
		if err := n.Decode(&v); err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, 0, fmt.Errorf("%s is not a finite number", shown(n.Value))
		}
		return v, kFloat, nil
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return nil, 0, fmt.Errorf("%s is not a boolean", shown(n.Value))
		}
		return v, kBool, nil
	case "!!null":
		return nil, kNull, nil
	}
	return nil, 0, fmt.Errorf("unsupported YAML tag %s", shown(n.Tag))
}

func kindOf(n *yaml.Node) kinds {
	switch n.Kind {
	case yaml.MappingNode:
		return kStruct
	case yaml.SequenceNode:
		return kList
	}
	_, k, _ := scalar(n)
	return k
}

// describe names a schema for messages: its definition and doc, or its CUE.
func (s *schema) describe() string {
	if s.name != "" {
		if s.doc != "" {
			return s.name + " (" + s.doc + ")"
		}
		return s.name + " (" + s.src + ")"
	}
	return s.src
}

func show(n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		return "a struct"
	}
	if n.Kind == yaml.SequenceNode {
		return "a list"
	}
	k := kindOf(n)
	if k == kString || k == 0 { // 0: a tag that does not fit its value
		return Excerpt(n.Value)
	}
	return fmt.Sprintf("%s %s", k, shown(n.Value))
}

// value checks n against s and returns the value with defaults applied.
// key is the mapping key n stands under, for "missing field" positions.
func (c *checker) value(s *schema, n, key *yaml.Node) any {
	n, ok := c.deref(n)
	if !ok {
		return nil
	}
	if s.alts != nil {
		return c.disjunction(s, n, key)
	}
	switch n.Kind {
	case yaml.MappingNode:
		if s.kinds&kStruct == 0 {
			c.errorf(n, diag.RuleSchema, "got a struct, want %s", s.describe())
			return nil
		}
		return c.structValue(s, n, key)
	case yaml.SequenceNode:
		if s.kinds&kList == 0 {
			c.errorf(n, diag.RuleSchema, "got a list, want %s", s.describe())
			return nil
		}
		return c.listValue(s, n)
	}
	v, k, err := scalar(n)
	if err != nil {
		c.errorf(n, diag.RuleSchema, "%v", err)
		return nil
	}
	if s.kinds&k == 0 {
		c.errorf(n, diag.RuleSchema, "got %s, want %s", show(n), s.describe())
		return nil
	}
	for _, ck := range s.checks {
		if !ck.holds(v) {
			c.errorf(n, diag.RuleSchema, "invalid value %s: want %s", show(n), s.describe())
			return nil
		}
	}
	return v
}

func (ck constraint) holds(v any) bool {
	switch ck.op {
	case token.EQL, token.NEQ:
		// CUE keeps int and float apart (1 & 1.0 conflicts), as does ==
		// on these dynamic values.
		return (v == ck.lit) == (ck.op == token.EQL)
	case token.MAT, token.NMAT:
		s, ok := v.(string)
		return ok && ck.matches(s) == (ck.op == token.MAT)
	case token.GEQ, token.GTR, token.LEQ, token.LSS:
		var f float64
		switch v := v.(type) {
		case int64:
			f = float64(v)
		case float64:
			f = v
		default:
			return false
		}
		switch ck.op {
		case token.GEQ:
			return f >= ck.num
		case token.GTR:
			return f > ck.num
		case token.LEQ:
			return f <= ck.num
		}
		return f < ck.num
	case token.ILLEGAL:
		s, ok := v.(string)
		return ok && utf8.RuneCountInString(s) <= ck.max
	}
	return false
}

// matchMemo remembers a regular expression's results on short strings.
// Names, label keys and values, env var names recur across the objects of a
// repository, and a call of Go's regexp costs many times a map lookup; the
// checker spent more on matching than on anything else of its own. The
// memo is bounded: once full, new strings are matched without it.
type matchMemo struct {
	sync.RWMutex
	m map[string]bool
}

const (
	memoMaxEntries = 2048
	memoMaxLen     = 64
)

func (ck constraint) matches(s string) bool {
	if ck.memo == nil || len(s) > memoMaxLen {
		return ck.re.MatchString(s)
	}
	ck.memo.RLock()
	ok, known := ck.memo.m[s]
	full := len(ck.memo.m) >= memoMaxEntries
	ck.memo.RUnlock()
	if known {
		return ok
	}
	ok = ck.re.MatchString(s)
	if !full {
		ck.memo.Lock()
		if len(ck.memo.m) < memoMaxEntries {
			ck.memo.m[s] = ok
		}
		ck.memo.Unlock()
	}
	return ok
}

// disjunction accepts the first alternative that n satisfies; CUE picks the
// same value for concrete data.
func (c *checker) disjunction(s *schema, n, key *yaml.Node) any {
	failed := c.failed
	c.quiet++
	for _, alt := range s.alts {
		c.failed = false
		v := c.value(alt, n, key)
		if !c.failed {
			c.quiet--
			c.failed = failed
			return v
		}
	}
	c.quiet--
	c.failed = failed
	if words, ok := s.literals(); ok && n.Kind == yaml.ScalarNode {
		// Values Kubernetes may know (SCTP, Always…) that berth does not.
		c.errorf(n, diag.RuleSchema, "berth does not support %s here; it supports %s", show(n), words)
		return nil
	}
	c.errorf(n, diag.RuleSchema, "got %s, want %s", show(n), s.describe())
	return nil
}

// unknownField says why a field is refused: allowed only beside another
// field's value (rollingUpdate with type RollingUpdate), unknown to
// berth.yaml, or a field of Kubernetes berth does not support.
func (c *checker) unknownField(s *schema, name string) string {
	// Every value that allows it (externalTrafficPolicy: NodePort or
	// LoadBalancer); the conditions on one field name one sibling.
	var sibling string
	var values []string
	for _, cd := range s.conds {
		if findField(cd.fields, name) != nil {
			sibling, values = cd.sibling, append(values, strconv.Quote(fmt.Sprint(cd.equals)))
		}
	}
	if values != nil {
		return fmt.Sprintf("field not allowed here: only when %s is %s", sibling, strings.Join(values, " or "))
	}
	if c.berthOwn {
		return "unknown field"
	}
	return "berth does not support this field"
}

// literals lists a disjunction of literal values in words ("TCP" or
// "UDP"), and reports whether s is one.
func (s *schema) literals() (string, bool) {
	var vals []string
	for _, alt := range s.alts {
		if len(alt.checks) != 1 || alt.checks[0].op != token.EQL || alt.alts != nil || alt.isStruct() {
			return "", false
		}
		vals = append(vals, fmt.Sprintf("%q", fmt.Sprint(alt.checks[0].lit)))
	}
	if len(vals) < 2 {
		return "", false
	}
	return strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1], true
}

func (c *checker) listValue(s *schema, n *yaml.Node) any {
	if len(n.Content) < s.minItems {
		c.errorf(n, diag.RuleSchema, "needs at least %d item(s)", s.minItems)
	}
	out := make([]any, 0, len(n.Content))
	for i, el := range n.Content {
		if c.budget <= 0 {
			break
		}
		c.path = append(c.path, "["+strconv.Itoa(i)+"]")
		out = append(out, c.value(s.elem, el, el))
		c.path = c.path[:len(c.path)-1]
	}
	return out
}

func (c *checker) structValue(s *schema, n, key *yaml.Node) any {
	fields := s.fields
	for _, cd := range s.conds {
		if c.condHolds(s, cd, n) {
			fields = append(fields[:len(fields):len(fields)], cd.fields...)
		}
	}
	out := make(map[string]any, len(fields))
	// Keys seen so far, for duplicates. Most mappings are small, and a scan
	// of the keys before this one is cheaper than building a map for each.
	var seen map[string]*yaml.Node
	if len(n.Content) > 2*smallMapping {
		seen = make(map[string]*yaml.Node, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			c.errorf(k, diag.RuleSchema, "field names must be strings, got %s", show(k))
			continue
		}
		name := k.Value
		c.path = append(c.path, shown(name)) // the user's keys are file content too
		var first *yaml.Node
		if seen != nil {
			first = seen[name]
		} else {
			first = earlierKey(n, i, name)
		}
		if first != nil {
			// yaml.v3 reports duplicate keys only when decoding into Go maps.
			c.errorf(k, diag.RuleSyntax, "field is set twice; first at line %d", first.Line)
			c.path = c.path[:len(c.path)-1]
			continue
		}
		if seen != nil {
			seen[name] = k
		}
		if f := findField(fields, name); f != nil {
			if !isNull(v) {
				out[name] = c.value(f.s, v, k)
			}
		} else if p := c.findPattern(s, name); p != nil {
			if !isNull(v) {
				out[name] = c.value(p.val, v, k)
			}
		} else {
			c.errorf(k, diag.RuleSchema, "%s%s", c.unknownField(s, name), suggest(name, fields))
		}
		c.path = c.path[:len(c.path)-1]
		if c.budget <= 0 {
			return out
		}
	}
	for _, f := range fields {
		if _, ok := out[f.name]; ok || f.optional {
			continue
		}
		if d, ok := f.s.defaultValue(); ok {
			out[f.name] = d
			continue
		}
		// At the key of the mapping that lacks it (spec: for spec.x), or
		// the mapping itself for a list item, which has no key.
		at := n
		if key != nil {
			at = key
		}
		if present := mapGet(n, f.name); present != nil {
			at = present // present but null
		}
		c.errorf(at, diag.RuleSchema, "missing required field %q", f.name)
	}
	return out
}

// smallMapping is the size up to which structValue finds duplicate keys by
// scanning rather than with a map.
const smallMapping = 16

// earlierKey returns the first string key of mapping n before index i named
// name, or nil.
func earlierKey(n *yaml.Node, i int, name string) *yaml.Node {
	for j := 0; j < i; j += 2 {
		if k := n.Content[j]; k.Value == name && k.Kind == yaml.ScalarNode && k.ShortTag() == "!!str" {
			return k
		}
	}
	return nil
}

func findField(fields []*field, name string) *field {
	for _, f := range fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

func (c *checker) findPattern(s *schema, name string) *pattern {
	for i := range s.patterns {
		p := &s.patterns[i]
		if p.key.accepts(name) {
			return p
		}
	}
	return nil
}

// accepts reports whether a scalar string satisfies s, for pattern keys.
func (s *schema) accepts(v string) bool {
	if s.alts != nil {
		for _, a := range s.alts {
			if a.accepts(v) {
				return true
			}
		}
		return false
	}
	if s.kinds&kString == 0 {
		return false
	}
	for _, ck := range s.checks {
		if !ck.holds(v) {
			return false
		}
	}
	return true
}

func (c *checker) condHolds(s *schema, cd cond, n *yaml.Node) bool {
	var v any
	if vn := mapGet(n, cd.sibling); vn != nil && !isNull(vn) {
		vn, _ = c.deref(vn)
		if vn.Kind != yaml.ScalarNode {
			return false
		}
		v, _, _ = scalar(vn)
	} else if f := findField(s.fields, cd.sibling); f != nil {
		v, _ = f.s.defaultValue()
	}
	return constraint{op: token.EQL, lit: cd.equals}.holds(v)
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	_, v := mapEntry(n, key)
	return v
}

// mapEntry returns the key node and value of key in mapping n.
func mapEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i].Kind == yaml.ScalarNode {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// defaultValue is what CUE fills in for an absent regular field: a
// disjunction's default, a literal, or a struct all of whose regular fields
// have defaults.
func (s *schema) defaultValue() (any, bool) {
	if v, ok := s.concrete(); ok {
		return v, true
	}
	// A struct that is also a list is `_`, which has no default.
	if s.alts != nil || !s.isStruct() || s.elem != nil {
		return nil, false
	}
	out := map[string]any{}
	fields := s.fields
	for _, cd := range s.conds {
		if f := findField(s.fields, cd.sibling); f != nil {
			if v, ok := f.s.defaultValue(); ok && (constraint{op: token.EQL, lit: cd.equals}).holds(v) {
				fields = append(fields[:len(fields):len(fields)], cd.fields...)
			}
		}
	}
	for _, f := range fields {
		if f.optional {
			continue
		}
		v, ok := f.s.defaultValue()
		if !ok {
			return nil, false
		}
		out[f.name] = v
	}
	return out, true
}

// suggest offers the closest allowed field name for a likely typo.
func suggest(name string, fields []*field) string {
	best, bestD := "", 3
	for _, f := range fields {
		if d := editDistance(strings.ToLower(name), strings.ToLower(f.name)); d < bestD {
			best, bestD = f.name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
