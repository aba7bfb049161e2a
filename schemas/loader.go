package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
	goyaml "github.com/goccy/go-yaml"
	goyamlparser "github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/konfig"
)

// DefaultMaxFileBytes is the largest file the loader reads. Kubernetes
// stores objects of at most 1.5 MiB; a config file far beyond that is a
// mistake (a build artefact, a dump), not a spec.
const DefaultMaxFileBytes = 4 << 20

// maxDiagnosticsPerFile keeps a pathological file from flooding output.
const maxDiagnosticsPerFile = 100

// Loaded is one valid object of the repository.
type Loaded struct {
	Object objects.Object
	// Pos is where the object starts in the user's files.
	Pos diag.Position
	// JSON is the object with every default applied, with sorted keys: the
	// same objects give the same bytes.
	JSON []byte
}

// ID is an object's identity within the cluster.
func (l Loaded) ID() objects.ObjectID { return idOf(l.Object) }

// display is the ID as diagnostics show it: the name and namespace of an
// object that failed its schema can be any text of the file.
func display(id objects.ObjectID) string {
	return objects.ObjectID{Kind: id.Kind, Namespace: shown(id.Namespace), Name: shown(id.Name)}.String()
}

func idOf(o objects.Object) objects.ObjectID {
	m := o.GetObjectMeta()
	return objects.ObjectID{Kind: o.GetTypeMeta().Kind, Namespace: m.Namespace, Name: m.Name}
}

// Result is what a load found.
type Result struct {
	Objects     []Loaded
	Diagnostics []diag.Diagnostic
	// Files lists every file read, as diagnostics name them.
	Files []string
}

// Errors counts diagnostics of severity error.
func (r *Result) Errors() int { return r.count(diag.Error) }

// Warnings counts diagnostics of severity warning.
func (r *Result) Warnings() int { return r.count(diag.Warning) }

func (r *Result) count(s diag.Severity) int {
	n := 0
	for _, d := range r.Diagnostics {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// Option configures Load.
type Option func(*options)

type options struct {
	maxFileBytes int64
	base         string
}

// WithMaxFileBytes sets the size above which a file is refused.
func WithMaxFileBytes(n int64) Option { return func(o *options) { o.maxFileBytes = n } }

// WithBase resolves the paths given to Load against dir, and positions stay
// relative to it (the masters load "." of a checkout this way).
func WithBase(dir string) Option { return func(o *options) { o.base = dir } }

// Load reads every spec below the given paths (directories or files) and
// checks them. Diagnostics are positioned in the files as the paths name
// them. A path that cannot be read is an error diagnostic, never a panic.
func Load(paths []string, opts ...Option) *Result {
	o := options{maxFileBytes: DefaultMaxFileBytes}
	for _, opt := range opts {
		opt(&o)
	}
	var tasks []task
	var sources []*source
	res := &Result{}
	for _, p := range distinctPaths(&o, paths) {
		src := collect(&o, p)
		if src.gate != nil {
			defer src.gate.root.Close()
		}
		sources = append(sources, src)
	}
	renderKustomizations(&o, sources)
	for _, src := range sources {
		if src.top != nil {
			defer src.top.root.Close()
		}
		src.first = len(tasks)
		tasks = append(tasks, src.tasks...)
		src.limit = len(tasks)
		res.Diagnostics = append(res.Diagnostics, src.diags...)
	}
	out := make([]fileResult, len(tasks))
	var wg sync.WaitGroup
	next := make(chan int)
	// One worker per core: parsing and checking are CPU-bound.
	for range min(runtime.GOMAXPROCS(0), max(1, len(tasks))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = tasks[i].run()
			}
		}()
	}
	for i := range tasks {
		next <- i
	}
	close(next)
	wg.Wait()

	var docs []*document
	for i, fr := range out {
		res.Files = append(res.Files, tasks[i].files()...)
		res.Diagnostics = append(res.Diagnostics, fr.diags...)
		docs = append(docs, fr.docs...)
	}
	res.Diagnostics = append(res.Diagnostics, crossCheck(docs)...)
	for _, src := range sources {
		res.Diagnostics = append(res.Diagnostics, src.verdict(out)...)
	}
	for _, d := range docs {
		if d.obj != nil {
			res.Objects = append(res.Objects, Loaded{Object: d.obj, Pos: d.pos, JSON: d.json})
		}
	}
	sort.SliceStable(res.Objects, func(i, j int) bool {
		a, b := res.Objects[i].Pos, res.Objects[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	sortDiagnostics(res.Diagnostics)
	sort.Strings(res.Files)
	return res
}

// task is one unit of parallel work: a YAML or JSON file, or one directory's
// CUE package.
type task interface {
	run() fileResult
	files() []string
}

type fileResult struct {
	docs  []*document
	diags []diag.Diagnostic
}

// document is one object candidate with what the cross-object checks need.
type document struct {
	pos   diag.Position
	obj   objects.Object // nil when it failed its schema
	json  []byte
	facts facts
}

func displayPath(arg, rel string) string {
	if rel == "." {
		return filepath.ToSlash(arg)
	}
	if arg == "." {
		return rel
	}
	return filepath.ToSlash(filepath.Join(arg, rel))
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func fileDiag(file, format string, args ...any) diag.Diagnostic {
	return diag.Diagnostic{Severity: diag.Error, Position: diag.Position{File: file, Line: 1, Column: 1}, Rule: diag.RuleFile, Message: fmt.Sprintf(format, args...)}
}

// readFile reads a spec file through g (directly when g is nil: a file the
// user named), refusing what is too large or not text.
func readFile(o *options, g *gate, name, display string) ([]byte, *diag.Diagnostic) {
	b, d := readBytes(o, g, name, display)
	if d != nil {
		return nil, d
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		d := fileDiag(display, "file holds a NUL byte: it looks binary, not a text spec")
		d.Position = offsetPos(display, b, i)
		return nil, &d
	}
	if !utf8.Valid(b) {
		i := 0
		for i < len(b) {
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		d := fileDiag(display, "file is not valid UTF-8 (byte 0x%02x)", b[i])
		d.Position = offsetPos(display, b, i)
		return nil, &d
	}
	return b, nil
}

// readBytes reads a file through g (directly when g is nil), refusing one
// larger than the limit; kustomize's generators read binary files this way.
func readBytes(o *options, g *gate, name, display string) ([]byte, *diag.Diagnostic) {
	var f *os.File
	var err error
	if g != nil {
		f, err = g.root.Open(name)
	} else {
		f, err = os.Open(name)
	}
	if err != nil {
		d := fileDiag(display, "cannot read: %v", unwrapPathError(err))
		if g != nil && g.refused(err) {
			d = g.outside(name, display)
		}
		return nil, &d
	}
	defer f.Close()
	tooLarge := fileDiag(display, "file is larger than the limit of %d bytes; refusing to read it", o.maxFileBytes)
	// Read into a buffer of the file's size (as os.ReadFile does) rather
	// than one grown from 512 bytes, after refusing one too large without
	// reading a byte of it; the limit still holds if the file grows.
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if fi.Size() > o.maxFileBytes {
			return nil, &tooLarge
		}
		size = fi.Size() + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+512))
	_, err = buf.ReadFrom(io.LimitReader(f, o.maxFileBytes+1))
	b := buf.Bytes()
	if err != nil {
		d := fileDiag(display, "cannot read: %v", unwrapPathError(err))
		return nil, &d
	}
	if int64(len(b)) > o.maxFileBytes {
		return nil, &tooLarge
	}
	return b, nil
}

// offsetPos turns a byte offset into a line and column.
func offsetPos(file string, b []byte, off int) diag.Position {
	off = min(off, len(b))
	line := 1 + bytes.Count(b[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(b[:off], '\n')
	return diag.Position{File: file, Line: line, Column: col}
}

// fileTask loads one YAML or JSON file.
type fileTask struct {
	o       *options
	cfg     *config
	g       *gate  // nil for a file the user named
	name    string // relative to g's root, or as named
	display string
}

func (t *fileTask) files() []string { return []string{t.display} }

func (t *fileTask) run() fileResult {
	b, d := readFile(t.o, t.g, t.name, t.display)
	if d != nil {
		return fileResult{diags: []diag.Diagnostic{*d}}
	}
	return loadYAML(t.cfg, t.display, b, strings.EqualFold(filepath.Ext(t.name), ".json"))
}

// loadYAML loads the documents of one YAML file (or JSON file, which is
// checked as JSON first and then read the same way).
func loadYAML(cfg *config, display string, b []byte, isJSON bool) fileResult {
	var fr fileResult
	if isJSON {
		if d := jsonSyntax(display, b); d != nil {
			return fileResult{diags: []diag.Diagnostic{*d}}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	docs := 0
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			fr.diags = append(fr.diags, yamlSyntax(display, b, err))
			break
		}
		if trailingEmpty(&n, b) {
			continue // a --- that ends the file, which kubectl skips too
		}
		docs++
		if at, err := expandMerges(&n); err != nil {
			fr.diags = append(fr.diags, diag.Diagnostic{Severity: diag.Error, Position: diag.Position{File: display, Line: at.Line, Column: at.Column}, Rule: diag.RuleSyntax, Message: err.Error()})
			continue
		}
		doc, diags := loadDocument(cfg, display, &n, nil)
		fr.diags = append(fr.diags, diags...)
		if doc != nil {
			fr.docs = append(fr.docs, doc)
		}
		if len(fr.diags) > maxDiagnosticsPerFile {
			fr.diags = append(fr.diags[:maxDiagnosticsPerFile], diag.Diagnostic{Severity: diag.Error, Position: fr.diags[maxDiagnosticsPerFile].Position, Rule: diag.RuleFile,
				Message: fmt.Sprintf("more than %d problems in this file; stopped reading it", maxDiagnosticsPerFile)})
			break
		}
	}
	if docs == 0 && len(fr.diags) == 0 {
		fr.diags = append(fr.diags, diag.Diagnostic{Severity: diag.Warning, Position: diag.Position{File: display, Line: 1, Column: 1}, Rule: diag.RuleKind, Message: "file holds no documents"})
	}
	return fr
}

// trailingEmpty reports whether doc is the empty document after a --- on
// the file's last line: yaml.v3 places it on a line past the end.
func trailingEmpty(doc *yaml.Node, b []byte) bool {
	if len(doc.Content) != 1 {
		return false
	}
	n := doc.Content[0]
	lines := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		lines++
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Value == "" && n.Line > lines
}

// jsonSyntax reports a JSON syntax error at its line and column; yaml.v3
// would accept some invalid JSON (trailing commas) and word others oddly.
func jsonSyntax(file string, b []byte) *diag.Diagnostic {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	err := dec.Decode(&v)
	if err == nil {
		if _, err2 := dec.Token(); err2 == io.EOF {
			return nil
		}
		d := diag.Diagnostic{Severity: diag.Error, Position: offsetPos(file, b, int(dec.InputOffset())), Rule: diag.RuleSyntax, Message: "JSON file holds more than one value; use a list in a YAML file for several objects"}
		return &d
	}
	off := len(b)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int(se.Offset) - 1
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "unexpected end of JSON input"
	}
	d := diag.Diagnostic{Severity: diag.Error, Position: offsetPos(file, b, max(off, 0)), Rule: diag.RuleSyntax, Message: "invalid JSON: " + libraryMessage(msg)}
	return &d
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlSyntax positions a YAML syntax error. yaml.v3 gives at best a line, so
// the file is parsed again with goccy/go-yaml, whose errors carry a line and
// column; this costs nothing on the path of valid files.
func yamlSyntax(file string, b []byte, err error) diag.Diagnostic {
	d := diag.Diagnostic{Severity: diag.Error, Position: diag.Position{File: file, Line: 1, Column: 1}, Rule: diag.RuleSyntax}
	if strings.Contains(err.Error(), "exceeded max depth") {
		// goccy takes seconds on such input and says less.
		d.Message = "invalid YAML: " + libraryMessage(strings.TrimPrefix(err.Error(), "yaml: "))
		return d
	}
	_, perr := goyamlparser.ParseBytes(b, 0)
	var se *goyaml.SyntaxError
	if errors.As(perr, &se) && se.Token != nil {
		d.Line, d.Column = se.Token.Position.Line, se.Token.Position.Column
		d.Message = "invalid YAML: " + libraryMessage(se.Message)
		return d
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		d.Line, _ = strconv.Atoi(m[1])
		msg = strings.Replace(msg, m[0], "", 1)
	}
	d.Message = "invalid YAML: " + libraryMessage(msg)
	return d
}

var schemaSet = sync.OnceValues(func() (map[string]*schema, error) { return compileSchemas(CUEFiles()) })

// kindSchemas maps each supported kind to its apiVersion and definition.
var kindSchemas = map[string]struct{ apiVersion, def string }{
	"Namespace":             {"v1", "#Namespace"},
	"ConfigMap":             {"v1", "#ConfigMap"},
	"Secret":                {"v1", "#Secret"},
	"Service":               {"v1", "#Service"},
	"Deployment":            {"apps/v1", "#Deployment"},
	"ServiceAccount":        {"v1", "#ServiceAccount"},
	"DaemonSet":             {"apps/v1", "#DaemonSet"},
	"StatefulSet":           {"apps/v1", "#StatefulSet"},
	"PersistentVolumeClaim": {"v1", "#PersistentVolumeClaim"},
	"Job":                   {"batch/v1", "#Job"},
	"CronJob":               {"batch/v1", "#CronJob"},
}

// SupportedKinds lists "apiVersion Kind" for every kind berth accepts.
func SupportedKinds() []string {
	var out []string
	for k, s := range kindSchemas {
		out = append(out, s.apiVersion+" "+k)
	}
	sort.Strings(out)
	return out
}

func newObject(kind string) objects.Object {
	switch kind {
	case "Namespace":
		return &objects.Namespace{}
	case "ConfigMap":
		return &objects.ConfigMap{}
	case "Secret":
		return &objects.Secret{}
	case "Service":
		return &objects.Service{}
	case "Deployment":
		return &objects.Deployment{}
	case "ServiceAccount":
		return &objects.ServiceAccount{}
	case "DaemonSet":
		return &objects.DaemonSet{}
	case "StatefulSet":
		return &objects.StatefulSet{}
	case "PersistentVolumeClaim":
		return &objects.PersistentVolumeClaim{}
	case "Job":
		return &objects.Job{}
	case "CronJob":
		return &objects.CronJob{}
	}
	return nil
}

// loadDocument checks one YAML document node (or one CUE object rendered as
// one) and returns it with its facts, or nil when it is not an object.
func loadDocument(cfg *config, file string, n *yaml.Node, nodeFiles map[*yaml.Node]string) (*document, []diag.Diagnostic) {
	c := newChecker(file)
	c.files, c.cfg = nodeFiles, cfg
	root := n
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	for root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	at := c.pos(root)
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return nil, []diag.Diagnostic{{Severity: diag.Warning, Position: at, Rule: diag.RuleKind, Message: "empty document"}}
	case root.Kind == yaml.SequenceNode:
		return nil, []diag.Diagnostic{{Severity: diag.Error, Position: at, Rule: diag.RuleKind, Message: "document is a list, not an object; write one object per document, separated by ---"}}
	case root.Kind != yaml.MappingNode:
		return nil, []diag.Diagnostic{{Severity: diag.Error, Position: at, Rule: diag.RuleKind, Message: fmt.Sprintf("document is %s, not an object with apiVersion and kind", show(root))}}
	}
	apiVersion, kind := scalarString(mapGet(root, "apiVersion")), scalarString(mapGet(root, "kind"))
	if kind == nil && IsKustomization(file) {
		// kustomize reads a kustomization file without apiVersion or kind.
		kind = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "Kustomization", Line: at.Line, Column: at.Column}
		if apiVersion == nil {
			apiVersion = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kustomizeAPIVersion, Line: at.Line, Column: at.Column}
		}
	}
	if kind == nil {
		return nil, []diag.Diagnostic{{Severity: diag.Error, Position: at, Rule: diag.RuleKind, Message: "object has no kind"}}
	}
	// Before apiVersion is required: a kind berth.yaml skips is none of
	// berth's business, however it is written.
	version := ""
	if apiVersion != nil {
		version = apiVersion.Value
	}
	if cfg.ignoresKind(version, kind.Value) {
		return nil, nil
	}
	if apiVersion == nil {
		return nil, []diag.Diagnostic{{Severity: diag.Error, Position: at, Rule: diag.RuleKind, Message: "object has no apiVersion"}}
	}
	ks, ok := kindSchemas[kind.Value]
	if !ok {
		return nil, []diag.Diagnostic{{Severity: diag.Error, Position: c.pos(kind), Rule: diag.RuleKind, Message: unsupportedKind(file, apiVersion.Value, kind.Value)}}
	}
	if apiVersion.Value != ks.apiVersion {
		return nil, []diag.Diagnostic{{Severity: diag.Error, Position: c.pos(apiVersion), Rule: diag.RuleKind,
			Message: fmt.Sprintf("%s is served as apiVersion %q, not %s", kind.Value, ks.apiVersion, Excerpt(apiVersion.Value))}}
	}
	schemas, err := schemaSet()
	if err != nil {
		panic(fmt.Sprintf("embedded schemas do not compile: %v", err)) // a build defect, caught by every test
	}
	doc := &document{pos: at}
	doc.facts.id, doc.facts.namePos = identity(c, kind.Value, root)
	c.object = display(doc.facts.id)
	v := c.value(schemas[ks.def], root, nil)
	if len(c.diags) > 0 {
		doc.facts.failed = true
		return doc, c.diags
	}
	doc.json, err = encodeValue(v)
	if err == nil {
		doc.obj = newObject(kind.Value)
		if !fillFrom(doc.obj, v) {
			doc.obj = newObject(kind.Value)
			err = json.Unmarshal(doc.json, doc.obj)
		}
	}
	if err != nil {
		// The schema admitted what the Go types cannot hold: a defect here.
		return nil, []diag.Diagnostic{{Severity: diag.Error, Position: at, Rule: diag.RuleSchema, Object: c.object, Message: "internal error: " + err.Error()}}
	}
	return doc, objectChecks(c, doc, root)
}

// distinctPaths drops the arguments that name what another one reads
// already: the same file or directory again, or a file inside a directory
// argument. Each file is then read once, not reported as its own duplicate.
func distinctPaths(o *options, paths []string) []string {
	abs := func(p string) string {
		if o.base != "" && !filepath.IsAbs(p) {
			p = filepath.Join(o.base, p)
		}
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return filepath.Clean(p)
	}
	var dirs []string
	for _, p := range paths {
		if fi, err := os.Stat(abs(p)); err == nil && fi.IsDir() {
			dirs = append(dirs, abs(p))
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		a := abs(p)
		inside := false
		for _, d := range dirs {
			inside = inside || a != d && strings.HasPrefix(a, d+string(filepath.Separator))
		}
		if fi, err := os.Stat(a); seen[a] || inside && err == nil && !fi.IsDir() {
			continue
		}
		seen[a] = true
		out = append(out, p)
	}
	return out
}

// scalarString is n if it is a string scalar, else nil.
func scalarString(n *yaml.Node) *yaml.Node {
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return nil
	}
	return n
}

// IsKustomization reports whether file is named as kustomize's own.
func IsKustomization(file string) bool {
	return slices.Contains(konfig.RecognizedKustomizationFileNames(), path.Base(filepath.ToSlash(file)))
}

// kustomizeAPIVersion is a kustomization's apiVersion when it has none.
const kustomizeAPIVersion = "kustomize.config.k8s.io/v1beta1"

// kindName is what a Kubernetes kind looks like (UpperCamelCase, short).
var kindName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,62}$`)

// apiServerKinds configure a Kubernetes API server (access control,
// admission, API extensions), which berth does not have.
var apiServerKinds = map[string]string{
	"Role": "access control", "ClusterRole": "access control", "RoleBinding": "access control", "ClusterRoleBinding": "access control",
	"PodSecurityPolicy": "admission", "ValidatingWebhookConfiguration": "admission", "MutatingWebhookConfiguration": "admission",
	"ValidatingAdmissionPolicy": "admission", "ValidatingAdmissionPolicyBinding": "admission",
	"CustomResourceDefinition": "API extensions", "APIService": "API extensions",
}

// unsupportedKind says why kind is refused, and how to skip it: in one
// line, without the list of every kind berth accepts where that list is
// no help.
func unsupportedKind(file, apiVersion, kind string) string {
	skip := "skip it with ignoreKinds in berth.yaml"
	if kindName.MatchString(kind) { // else the excerpt alone is shown
		skip = fmt.Sprintf("skip it with `ignoreKinds: [%q]` in berth.yaml", kind)
	}
	if what, ok := apiServerKinds[kind]; ok {
		return fmt.Sprintf("%s configures a Kubernetes API server's %s, which berth does not have; %s", kind, what, skip) // a known name
	}
	if kind == "Kustomization" && IsKustomization(file) {
		return "berth renders a kustomization when it validates the directory holding it; name the directory, or " + skip
	}
	if kind == "Kustomization" {
		return "kustomize reads a kustomization only from a file named kustomization.yaml, kustomization.yml or Kustomization, whose directory berth renders; rename it, or " + skip
	}
	return fmt.Sprintf("berth does not support %s (it runs %s); %s", Excerpt(apiVersion+" "+kind), strings.Join(SupportedKinds(), ", "), skip)
}

// encodeBuffers lets a document be encoded into a buffer grown by earlier
// ones, then copied out at its exact size.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

func encodeValue(v any) ([]byte, error) {
	buf := encodeBuffers.Get().(*[]byte)
	defer encodeBuffers.Put(buf)
	b, err := appendJSON((*buf)[:0], v)
	*buf = b
	return bytes.Clone(b), err
}

// identity reads kind, namespace and name even from an object that fails its
// schema, so one bad field does not also cause "not defined" errors elsewhere.
func identity(c *checker, kind string, root *yaml.Node) (objects.ObjectID, diag.Position) {
	id := objects.ObjectID{Kind: kind}
	pos := c.pos(root)
	if meta := mapGet(root, "metadata"); meta != nil && meta.Kind == yaml.MappingNode {
		if n := mapGet(meta, "name"); n != nil && n.Kind == yaml.ScalarNode {
			id.Name, pos = n.Value, c.pos(n)
		}
		if n := mapGet(meta, "namespace"); n != nil && n.Kind == yaml.ScalarNode {
			id.Namespace = n.Value
		}
	}
	if id.Namespace == "" && kind != "Namespace" {
		id.Namespace = "default"
	}
	return id, pos
}
