package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"

	"github.com/berth/berth/schemas/diag"
)

// RuleKustomize: kustomize could not render a kustomization, or it asks
// for what berth does not do (fetch, run Helm).
const RuleKustomize = "kustomize"

// kustRoot is a directory holding a kustomization. Every one the walk finds
// is rendered; those another one renders as its base or component are then
// dropped, and the rest replace the files they read.
type kustRoot struct {
	src  *source
	rel  string // its directory, relative to the gate's root
	file string // its kustomization file, as diagnostics name it
	dir  string // its directory, symlinks resolved
	fs   *kustFS
	res  resmap.ResMap
	diag *diag.Diagnostic // why it did not render
}

// kustomizeMu serialises renders: kustomize keeps the OpenAPI schema that a
// kustomization may choose in process-wide state.
var kustomizeMu sync.Mutex

// renderKustomizations renders the kustomization roots of every source and
// puts what the top-most ones render in place of the files they read.
func renderKustomizations(o *options, sources []*source) {
	var roots []*kustRoot
	for _, src := range sources {
		if len(src.roots) == 0 {
			continue
		}
		if err := src.openTop(o); err != nil {
			src.diags = append(src.diags, fileDiag(src.display, "cannot read the repository for kustomize: %v", unwrapPathError(err)))
			continue
		}
		for _, r := range src.roots {
			r.dir = filepath.Join(src.realRoot, r.rel)
			r.render(o)
			roots = append(roots, r)
		}
	}
	// A root is top-most unless another one's render loaded it and it did
	// not load that one (a cycle, which kustomize reports, keeps both).
	// What they read is theirs; so is all below one that failed, whose
	// files would otherwise show as errors of their own.
	consumed := map[string]bool{}
	var failed []string
	var kept []*kustRoot
	for _, r := range roots {
		top := true
		for _, s := range roots {
			if s != r && s.fs.loaded[r.dir] && !r.fs.loaded[s.dir] {
				top = false
				r.src.renderedElsewhere = r.src.renderedElsewhere || s.src != r.src
			}
		}
		if top {
			kept = append(kept, r)
			for p := range r.fs.requested {
				consumed[p] = true
			}
			if r.diag != nil {
				failed = append(failed, r.dir)
			}
		}
	}
	for _, src := range sources {
		if len(src.roots) == 0 || src.top == nil {
			continue
		}
		src.tasks = slices.DeleteFunc(src.tasks, func(t task) bool {
			ft, ok := t.(*fileTask)
			if !ok {
				return false
			}
			p := filepath.Join(src.realRoot, ft.name)
			return consumed[p] || slices.ContainsFunc(failed, func(dir string) bool { return within(dir, p) })
		})
	}
	for _, r := range kept {
		r.src.tasks = append(r.src.tasks, &kustTask{cfg: r.src.cfg, root: r})
	}
}

// openTop opens the repository's top for kustomize, which may read bases
// above the directory named: the extracted commit for the masters, else
// the git top level, else the gate's root.
func (src *source) openTop(o *options) error {
	var err error
	if src.realRoot, err = realPath(src.rootDir); err != nil {
		return err
	}
	if src.realDir, err = realPath(src.dir); err != nil {
		return err
	}
	src.realTop = src.realRoot
	if o.base != "" {
		if b, err := realPath(o.base); err == nil && within(b, src.realRoot) {
			src.realTop = b
		}
	} else {
		for d := src.realRoot; filepath.Dir(d) != d; d = filepath.Dir(d) {
			if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
				src.realTop = d
				break
			}
		}
	}
	src.top, err = openGate(src.realTop)
	return err
}

// realPath is p absolute, its links resolved.
func realPath(p string) (string, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// displayOf names a file kustomize read (a real path) as diagnostics do:
// relative to the directory argument, as the user named it.
func (src *source) displayOf(real string) string {
	if !filepath.IsAbs(real) {
		real = filepath.Join(src.realDir, real)
	}
	rel, err := filepath.Rel(src.realDir, real)
	if err != nil {
		return real
	}
	return displayPath(src.arg, filepath.ToSlash(rel))
}

func within(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// render runs kustomize as `kubectl kustomize` does (files only below the
// kustomization's root, built-in plugins only, so no exec, KRM function or
// Helm), with origin annotations to place what it renders.
func (r *kustRoot) render(o *options) {
	r.fs = &kustFS{o: o, src: r.src, root: r.dir, read: map[string][]byte{}, requested: map[string]bool{}, loaded: map[string]bool{}, kusts: map[string]*yaml.Node{}}
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			r.res, r.diag = nil, r.fail(fmt.Errorf("panic: %v", p))
		}
	}()
	// Only a kustomization's openapi field sets this; the next render must
	// not inherit it.
	if openapi.GetSchemaVersion() != "" {
		openapi.ResetOpenAPI()
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified // kubectl kustomize's default
	res, err := krusty.MakeKustomizer(opts).Run(r.fs, r.dir)
	if err != nil || r.fs.refusal != nil {
		r.diag = r.fail(err)
		return
	}
	r.res = res
}

// fail is the diagnostic for a render that failed: what the file system
// refused, at its entry, else kustomize's message at the kustomization.
func (r *kustRoot) fail(err error) *diag.Diagnostic {
	if r.fs.refusal != nil {
		return r.fs.refusal
	}
	return &diag.Diagnostic{Severity: diag.Error, Position: diag.Position{File: r.file, Line: 1, Column: 1}, Rule: RuleKustomize,
		Message: "kustomize: " + r.src.kustomizeMessage(err.Error())}
}

// kustomizeMessage shows kustomize's message on one line, with the
// repository's paths as diagnostics name them. Its single quotes hold
// paths and the messages of the steps that led to the error; what it
// quotes of a file, a configuration in backquotes, becomes an excerpt.
func (src *source) kustomizeMessage(msg string) string {
	paths := regexp.MustCompile(regexp.QuoteMeta(src.realTop) + `(/[^\s'"` + "`" + `:]*)?`)
	msg = paths.ReplaceAllStringFunc(msg, src.displayOf)
	msg = backquoted.ReplaceAllStringFunc(msg, func(q string) string { return Excerpt(q[1 : len(q)-1]) })
	return clip(strings.Join(strings.Fields(msg), " "), maxKustomizeMessageRunes)
}

var backquoted = regexp.MustCompile("`[^`]*`")

// maxKustomizeMessageRunes: kustomize's messages chain every step that led
// to the error, the cause last.
const maxKustomizeMessageRunes = 600

// kustTask checks what a top-most kustomization rendered.
type kustTask struct {
	cfg  *config
	root *kustRoot
}

func (t *kustTask) files() []string {
	var out []string
	for p := range t.root.fs.read {
		out = append(out, t.root.src.displayOf(p))
	}
	sort.Strings(out)
	return out
}

func (t *kustTask) run() fileResult {
	r := t.root
	if r.diag != nil {
		return fileResult{diags: []diag.Diagnostic{*r.diag}}
	}
	var fr fileResult
	docs := map[string][]*yaml.Node{} // origin files, parsed once
	for _, res := range r.res.Resources() {
		origin, err := res.GetOrigin()
		if err == nil {
			err = res.SetOrigin(nil) // not part of the object
		}
		var y []byte
		if err == nil {
			y, err = res.AsYAML()
		}
		var doc yaml.Node
		if err == nil {
			err = yaml.Unmarshal(y, &doc)
		}
		if err != nil || len(doc.Content) == 0 {
			fr.diags = append(fr.diags, diag.Diagnostic{Severity: diag.Error, Position: diag.Position{File: r.file, Line: 1, Column: 1}, Rule: RuleKustomize,
				Message: fmt.Sprintf("internal error: %s as kustomize renders it: %v", res.CurId(), err)})
			continue
		}
		p := r.placer(origin, doc.Content[0], docs)
		p.place(doc.Content[0], p.origin)
		d, diags := loadDocument(t.cfg, p.file, &doc, p.files)
		for i := range diags {
			// A value kustomize changed or added is placed at its object.
			if p.origin != nil && diags[i].Position == p.fallback {
				diags[i].Related = append(diags[i].Related, diag.Related{Position: diag.Position{File: r.file, Line: 1, Column: 1},
					Message: "rendered by this kustomization; " + p.file + " may not hold this value as written"})
			}
		}
		fr.diags = append(fr.diags, diags...)
		if d != nil {
			fr.docs = append(fr.docs, d)
		}
	}
	return fr
}

// placer gives each node of a rendered object the position of the same
// field in the file the object came from, where it holds the same value
// there; else the object's own position in that file, or for a generated
// object the generator's entry.
type placer struct {
	file     string
	origin   *yaml.Node // the object as written; nil for a generated one
	fallback diag.Position
	files    map[*yaml.Node]string
	seen     map[*yaml.Node]bool
}

func (r *kustRoot) placer(origin *resource.Origin, obj *yaml.Node, cache map[string][]*yaml.Node) *placer {
	p := &placer{file: r.file, fallback: diag.Position{File: r.file, Line: 1, Column: 1}, files: map[*yaml.Node]string{}, seen: map[*yaml.Node]bool{}}
	if origin == nil {
		return p
	}
	kind, name := scalarValue(mapGet(obj, "kind")), ""
	if meta := mapGet(obj, "metadata"); meta != nil {
		name = scalarValue(mapGet(meta, "name"))
	}
	rel, generated := origin.Path, false
	if rel == "" {
		rel, generated = origin.ConfiguredIn, true
	}
	real := filepath.Join(r.dir, rel)
	p.file = r.src.displayOf(real)
	p.fallback = diag.Position{File: p.file, Line: 1, Column: 1}
	docs, ok := cache[real]
	if !ok {
		docs = parseDocs(r.fs.read[real])
		cache[real] = docs
	}
	var at *yaml.Node
	switch {
	case !generated:
		at = pickDoc(docs, kind, name)
		p.origin = at
	case IsKustomization(real) && len(docs) > 0:
		// configMapGenerator or secretGenerator: the entry whose name the
		// rendered one carries (with prefix, suffix and hash).
		list := origin.ConfiguredBy.Kind
		if len(list) > 0 {
			list = strings.ToLower(list[:1]) + list[1:]
		}
		at = pickNamed(mapGetFold(docs[0], list), name)
	default: // a generator's configuration file
		at = pickDoc(docs, origin.ConfiguredBy.Kind, origin.ConfiguredBy.Name)
	}
	if at != nil {
		p.fallback = diag.Position{File: p.file, Line: at.Line, Column: at.Column}
	}
	return p
}

func (p *placer) place(n, o *yaml.Node) {
	if p.seen[n] {
		return
	}
	p.seen[n] = true
	o = deref(o)
	if o == nil || o.Kind != n.Kind || n.Kind == yaml.ScalarNode && (o.Value != n.Value || o.ShortTag() != n.ShortTag()) {
		o = nil
		n.Line, n.Column, p.files[n] = p.fallback.Line, p.fallback.Column, p.fallback.File
	} else {
		n.Line, n.Column, p.files[n] = o.Line, o.Column, p.file
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var ok, ov *yaml.Node
			if o != nil {
				ok, ov = mapEntry(o, n.Content[i].Value)
			}
			p.place(n.Content[i], ok)
			p.place(n.Content[i+1], ov)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.place(c, sameItem(o, c, i))
		}
	}
}

// sameItem is the item of the origin's list o that item i of a rendered
// list comes from: the one of the same name (patches add, remove and
// reorder containers and ports by name), else the one at the same index.
func sameItem(o, item *yaml.Node, i int) *yaml.Node {
	if o == nil || o.Kind != yaml.SequenceNode {
		return nil
	}
	if name := scalarValue(mapGet(item, "name")); item.Kind == yaml.MappingNode && name != "" {
		for _, it := range o.Content {
			if it = deref(it); it.Kind == yaml.MappingNode && scalarValue(mapGet(it, "name")) == name {
				return it
			}
		}
		return nil
	}
	if i < len(o.Content) {
		return o.Content[i]
	}
	return nil
}

// pickDoc is the document of kind whose name the rendered name holds (a
// prefix and suffix around it), the longest such; nil when none.
func pickDoc(docs []*yaml.Node, kind, name string) *yaml.Node {
	var best *yaml.Node
	bestLen := -1
	for _, d := range docs {
		if d.Kind != yaml.MappingNode || scalarValue(mapGet(d, "kind")) != kind {
			continue
		}
		n := ""
		if meta := deref(mapGet(d, "metadata")); meta != nil && meta.Kind == yaml.MappingNode {
			n = scalarValue(mapGet(meta, "name"))
		}
		if strings.Contains(name, n) && len(n) > bestLen {
			best, bestLen = d, len(n)
		}
	}
	return best
}

// pickNamed is the mapping of list whose name the rendered name holds, the
// longest such.
func pickNamed(list *yaml.Node, name string) *yaml.Node {
	list = deref(list)
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	var best *yaml.Node
	for _, it := range list.Content {
		it = deref(it)
		if n := scalarValue(mapGet(it, "name")); it.Kind == yaml.MappingNode && n != "" && strings.Contains(name, n) &&
			(best == nil || len(n) > len(scalarValue(mapGet(best, "name")))) {
			best = it
		}
	}
	return best
}

func scalarValue(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// mapGetFold is the value of key in mapping n, the key's case ignored, as
// kustomize reads its own files.
func mapGetFold(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if strings.EqualFold(n.Content[i].Value, key) {
			return n.Content[i+1]
		}
	}
	return nil
}

// parseDocs is the root node of each document of b, up to one that does
// not parse (kustomize has read it, so that is rare).
func parseDocs(b []byte) []*yaml.Node {
	var out []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return out
		}
		if len(n.Content) > 0 {
			out = append(out, deref(n.Content[0]))
		}
	}
}

// kustFS is the repository as kustomize sees it: read-only, no path beyond
// the repository's top, every file read through an os.Root under the
// loader's size limit, and no kustomization or built-in plugin
// configuration handed over before it is checked for what kustomize would
// fetch (the network, git) or run (Helm).
type kustFS struct {
	o    *options
	src  *source
	root string // the kustomization rendered (its directory, a real path)
	// read holds every file read, by real path; requested every path asked
	// for, as asked (a link's own path too); loaded the directories whose
	// kustomization was read, kusts those that passed the checks, parsed.
	read      map[string][]byte
	requested map[string]bool
	loaded    map[string]bool
	kusts     map[string]*yaml.Node
	refusal   *diag.Diagnostic
}

var errReadOnly = errors.New("berth's view of the repository is read-only")

// resolve returns p (absolute, as kustomize asks) with its links resolved,
// and relative to the top; a path out of the repository is refused.
func (f *kustFS) resolve(p string) (real, rel string, err error) {
	p = filepath.Clean(p)
	if !filepath.IsAbs(p) {
		p = filepath.Join(f.root, p)
	}
	top := f.src.realTop
	if !within(top, p) {
		return "", "", f.refuse(p, "leads outside the repository; berth reads only the repository's files")
	}
	if real, err = filepath.EvalSymlinks(p); err != nil {
		return "", "", err
	}
	if !within(top, real) {
		return "", "", f.refuse(p, "is a symlink that points outside the repository; refusing to read it")
	}
	rel, err = filepath.Rel(top, real)
	return real, rel, err
}

// refuse records why p was refused, at the kustomization entry that names
// it when one does.
func (f *kustFS) refuse(p, why string) error {
	at, entry := f.entry(p)
	msg := fmt.Sprintf("%s %s", Excerpt(entry), why)
	if entry == "" {
		msg = fmt.Sprintf("%s %s", f.src.displayOf(p), why)
	}
	f.setRefusal(diag.Diagnostic{Severity: diag.Error, Position: at, Rule: diag.RuleFile, Message: msg})
	return errors.New(msg)
}

func (f *kustFS) setRefusal(d diag.Diagnostic) {
	if f.refusal == nil {
		f.refusal = &d
	}
}

// entry finds the scalar of a kustomization read so far that names p.
func (f *kustFS) entry(p string) (diag.Position, string) {
	dirs := make([]string, 0, len(f.kusts))
	for d := range f.kusts {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		var found *yaml.Node
		walkScalars(f.kusts[dir], map[*yaml.Node]bool{}, func(n *yaml.Node) {
			if found == nil && n.Value != "" && (filepath.Join(dir, n.Value) == p || filepath.Clean(n.Value) == p) {
				found = n
			}
		})
		if found != nil {
			return diag.Position{File: f.src.displayOf(f.kustFile(dir)), Line: found.Line, Column: found.Column}, found.Value
		}
	}
	return diag.Position{File: f.src.displayOf(f.kustFile(f.root)), Line: 1, Column: 1}, ""
}

// kustFile is the kustomization file read in dir.
func (f *kustFS) kustFile(dir string) string {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if _, ok := f.read[filepath.Join(dir, name)]; ok {
			return filepath.Join(dir, name)
		}
	}
	return filepath.Join(dir, konfig.DefaultKustomizationFileName())
}

func walkScalars(n *yaml.Node, seen map[*yaml.Node]bool, fn func(*yaml.Node)) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.ScalarNode {
		fn(n)
	}
	if n.Kind == yaml.AliasNode {
		walkScalars(n.Alias, seen, fn)
	}
	for _, c := range n.Content {
		walkScalars(c, seen, fn)
	}
}

func (f *kustFS) ReadFile(p string) ([]byte, error) {
	real, rel, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	f.requested[filepath.Clean(p)], f.requested[real] = true, true
	b, ok := f.read[real]
	if !ok {
		var d *diag.Diagnostic
		if b, d = readBytes(f.o, f.src.top, rel, f.src.displayOf(real)); d != nil {
			f.setRefusal(*d)
			return nil, errors.New(d.Message)
		}
		f.read[real] = b
	}
	display := f.src.displayOf(real)
	if IsKustomization(real) {
		f.loaded[filepath.Dir(real)] = true
		doc, d := checkKustomization(display, b)
		if d != nil {
			f.setRefusal(*d)
			return nil, errors.New(d.Message)
		}
		if d := f.pluginDirs(filepath.Dir(real), display, doc); d != nil {
			f.setRefusal(*d)
			return nil, errors.New(d.Message)
		}
		f.kusts[filepath.Dir(real)] = doc
		if filepath.Dir(real) == f.root {
			b = withOriginAnnotations(b)
		}
		return b, nil
	}
	if d := checkPluginConfigs(display, b); d != nil {
		f.setRefusal(*d)
		return nil, errors.New(d.Message)
	}
	return b, nil
}

// pluginDirs refuses a directory under generators, transformers or
// validators: kustomize configures plugins from what it renders there,
// which its patches may have changed after berth checked the files.
func (f *kustFS) pluginDirs(dir, display string, doc *yaml.Node) *diag.Diagnostic {
	m := deref(firstContent(doc))
	for i := 0; m != nil && m.Kind == yaml.MappingNode && i+1 < len(m.Content); i += 2 {
		if !slices.ContainsFunc(pluginFields, func(f string) bool { return strings.EqualFold(m.Content[i].Value, f) }) {
			continue
		}
		list := deref(m.Content[i+1])
		for j := 0; list != nil && list.Kind == yaml.SequenceNode && j < len(list.Content); j++ {
			it := deref(list.Content[j])
			if v := scalarValue(it); v != "" && !strings.Contains(v, "\n") && f.IsDir(filepath.Join(dir, v)) {
				return &diag.Diagnostic{Severity: diag.Error, Position: diag.Position{File: display, Line: it.Line, Column: it.Column}, Rule: RuleKustomize,
					Message: fmt.Sprintf("%s: %s is a directory; berth configures built-in plugins from files only, which it checks for what kustomize would fetch", m.Content[i].Value, Excerpt(v))}
			}
		}
	}
	return nil
}

// pluginFields list the plugin configurations of a kustomization.
var pluginFields = []string{"generators", "transformers", "validators"}

func (f *kustFS) stat(p string) (string, fs.FileInfo, error) {
	real, rel, err := f.resolve(p)
	if err != nil {
		return "", nil, err
	}
	fi, err := f.src.top.root.Stat(rel)
	return real, fi, err
}

func (f *kustFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	real, fi, err := f.stat(p)
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		return filesys.ConfirmedDir(real), "", nil
	}
	f.requested[filepath.Clean(p)] = true
	return filesys.ConfirmedDir(filepath.Dir(real)), filepath.Base(real), nil
}

func (f *kustFS) Exists(p string) bool {
	_, _, err := f.stat(p)
	return err == nil
}

func (f *kustFS) IsDir(p string) bool {
	_, fi, err := f.stat(p)
	return err == nil && fi.IsDir()
}

func (f *kustFS) ReadDir(p string) ([]string, error) {
	_, rel, err := f.resolve(p)
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(f.src.top.root.FS(), filepath.ToSlash(rel))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}

// kustomize build needs none of these.
func (f *kustFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (f *kustFS) Mkdir(string) error                  { return errReadOnly }
func (f *kustFS) MkdirAll(string) error               { return errReadOnly }
func (f *kustFS) RemoveAll(string) error              { return errReadOnly }
func (f *kustFS) WriteFile(string, []byte) error      { return errReadOnly }
func (f *kustFS) Open(string) (filesys.File, error)   { return nil, errReadOnly }
func (f *kustFS) Glob(string) ([]string, error)       { return nil, errReadOnly }
func (f *kustFS) Walk(string, filepath.WalkFunc) error {
	return errReadOnly
}

// withOriginAnnotations asks kustomize to note each object's origin, as
// `buildMetadata: [originAnnotations]` does; the loader removes the notes.
func withOriginAnnotations(b []byte) []byte {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return b // kustomize says what is wrong
	}
	m := doc.Content[0]
	item := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: types.OriginAnnotations}
	if list := mapGetFold(m, "buildMetadata"); list != nil {
		if list.Kind != yaml.SequenceNode || slices.ContainsFunc(list.Content, func(n *yaml.Node) bool { return n.Value == types.OriginAnnotations }) {
			return b
		}
		list.Content = append(list.Content, item)
	} else {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "buildMetadata"},
			&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{item}})
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return b
	}
	return out
}

// Fields of a kustomization (and of a built-in plugin's configuration)
// that kustomize never reads a file or a URL from: their values may look
// like URLs (an annotation, an image, a literal) without being one.
var valueOnlyFields = []string{"metadata", "commonAnnotations", "annotations", "labels", "commonLabels", "images", "literals"}

// checkKustomization refuses a kustomization that would have kustomize
// fetch (a URL or a git repository as a base, a resource, a patch, a
// generator's file...) or run Helm; it returns the parsed file.
func checkKustomization(display string, b []byte) (*yaml.Node, *diag.Diagnostic) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var first *yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			return first, nil
		}
		if err != nil {
			d := yamlSyntax(display, b, err)
			return nil, &d
		}
		if first == nil {
			first = &doc
		}
		c := &remoteCheck{file: display, seen: map[*yaml.Node]bool{}}
		c.kustomization(deref(firstContent(&doc)))
		if c.diag != nil {
			return nil, c.diag
		}
	}
}

// checkPluginConfigs refuses a built-in plugin's configuration (a document
// of apiVersion builtin: only those run, others are refused by kustomize)
// that would have kustomize fetch or run Helm.
func checkPluginConfigs(display string, b []byte) *diag.Diagnostic {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		if dec.Decode(&doc) != nil {
			return nil // not YAML: kustomize reads it as data or says what is wrong
		}
		// kustomize runs a document as a built-in plugin when the version of
		// its apiVersion (the last, if the key is there twice) is builtin.
		root := deref(firstContent(&doc))
		if !slices.ContainsFunc(values(root, "apiVersion"), func(v string) bool {
			return strings.Contains(strings.ToLower(v), konfig.BuiltinPluginApiVersion)
		}) {
			continue
		}
		c := &remoteCheck{file: display, seen: map[*yaml.Node]bool{}}
		c.pluginConfig(root)
		if c.diag != nil {
			return c.diag
		}
	}
}

func firstContent(doc *yaml.Node) *yaml.Node {
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

type remoteCheck struct {
	file string
	seen map[*yaml.Node]bool
	diag *diag.Diagnostic
}

func (c *remoteCheck) refuse(n *yaml.Node, format string, args ...any) {
	if c.diag == nil {
		c.diag = &diag.Diagnostic{Severity: diag.Error, Position: diag.Position{File: c.file, Line: n.Line, Column: n.Column}, Rule: RuleKustomize, Message: fmt.Sprintf(format, args...)}
	}
}

func (c *remoteCheck) kustomization(m *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], deref(m.Content[i+1])
		switch {
		case strings.EqualFold(k.Value, "helmCharts") || strings.EqualFold(k.Value, "helmChartInflationGenerator"):
			if v != nil && len(v.Content) > 0 {
				c.refuse(k, "%s: berth does not run Helm; render the chart into the repository (helm template) and list the files under resources", k.Value)
			}
		case slices.ContainsFunc(pluginFields, func(f string) bool { return strings.EqualFold(k.Value, f) }):
			// Entries are files, or configurations written inline.
			walkScalars(v, c.seen, func(n *yaml.Node) {
				c.scalar(k.Value, n)
				if strings.Contains(n.Value, "\n") {
					for _, doc := range parseDocs([]byte(n.Value)) {
						inline := &remoteCheck{file: c.file, seen: map[*yaml.Node]bool{}}
						inline.pluginConfig(doc)
						if inline.diag != nil {
							c.refuse(n, "%s: inline configuration: %s", k.Value, inline.diag.Message)
						}
					}
				}
			})
		default:
			c.values(k.Value, v)
		}
	}
}

func (c *remoteCheck) pluginConfig(m *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	if slices.Contains(values(m, "kind"), "HelmChartInflationGenerator") {
		c.refuse(m, "HelmChartInflationGenerator: berth does not run Helm; render the chart into the repository (helm template) and list the files under resources")
		return
	}
	c.values("", m)
}

// values are the values of key in mapping m, every one if the key is there
// more than once.
func values(m *yaml.Node, key string) []string {
	var out []string
	for i := 0; m != nil && m.Kind == yaml.MappingNode && i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			out = append(out, scalarValue(m.Content[i+1]))
		}
	}
	return out
}

// values checks every scalar below n but those of value-only fields.
func (c *remoteCheck) values(field string, n *yaml.Node) {
	n = deref(n)
	if n == nil || c.seen[n] {
		return
	}
	c.seen[n] = true
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if !slices.ContainsFunc(valueOnlyFields, func(f string) bool { return strings.EqualFold(k, f) }) {
				c.values(k, n.Content[i+1])
			}
		}
	case yaml.SequenceNode:
		for _, it := range n.Content {
			c.values(field, it)
		}
	case yaml.ScalarNode:
		c.scalar(field, n)
	}
}

// scalar refuses a value kustomize would fetch: a URL it downloads, or a
// git repository it clones (kustomize's own forms: a scheme, git::,
// user@host:, github.com/), also as a generator's files entry key=path.
func (c *remoteCheck) scalar(field string, n *yaml.Node) {
	texts := []string{n.Value}
	if n.ShortTag() != "!!str" {
		var s string
		if n.Decode(&s) == nil { // !!binary, for one, is decoded
			texts = append(texts, s)
		}
	}
	for _, s := range texts {
		_, path, keyed := strings.Cut(s, "=")
		if isRemote(s) || keyed && strings.EqualFold(field, "files") && isRemote(path) {
			c.refuse(n, "%s: %s is remote; berth renders kustomizations offline and fetches nothing: copy it into the repository", field, Excerpt(s))
			return
		}
	}
}

var gitUser = regexp.MustCompile(`^[a-z][a-z0-9-]*@`)

func isRemote(s string) bool {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return true // kustomize's own test for a file to download
	}
	s = strings.TrimPrefix(strings.ToLower(s), "git::")
	for _, p := range []string{"http://", "https://", "ssh://", "file://", "github.com/", "github.com:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return gitUser.MatchString(s)
}
