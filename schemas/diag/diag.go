// Package diag holds what the loader finds: diagnostics at positions in
// the user's files. It is apart from the loader so that the state, which
// keeps a rejected revision's diagnostics, links no CUE.
package diag

import "fmt"

// Severity of a diagnostic.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Position is a place in the user's repository: a path relative to the repo
// root, a 1-based line and a 1-based column (in bytes).
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

func (p Position) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// Diagnostic is one finding of the loader, always at a position in the
// user's files, never in the schema's.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Position
	// Rule names the check, e.g. "schema", "syntax", "duplicate"; SARIF and
	// JUnit use it as the rule or test name.
	Rule    string `json:"rule"`
	Message string `json:"message"`
	// Object is "Kind namespace/name" when the finding belongs to one.
	Object  string    `json:"object,omitempty"`
	Related []Related `json:"related,omitempty"`
}

// Related points at a second place that explains a diagnostic, such as the
// first definition of a duplicate.
type Related struct {
	Position
	Message string `json:"message"`
}

func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Position, d.Severity, d.Message)
}

// Rules, as diagnostics name them.
const (
	RuleFile       = "file"       // unreadable, too large, binary, outside the repo
	RuleSyntax     = "syntax"     // YAML, JSON or CUE that does not parse
	RuleConfig     = "config"     // berth.yaml
	RuleKind       = "kind"       // unsupported apiVersion/kind, not an object
	RuleSchema     = "schema"     // a field against its CUE schema
	RuleIncomplete = "incomplete" // CUE values that never become concrete
	RuleDuplicate  = "duplicate"
	RuleSelector   = "selector"
	RuleReference  = "reference" // ConfigMap/Secret/volume/port references
	RuleUnique     = "unique"    // names that must be unique within an object
	RuleTargetPort = "target-port"
)
