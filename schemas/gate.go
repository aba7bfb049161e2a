package schemas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth/berth/schemas/diag"
)

// gate reads the files of one directory argument (the repository) through
// an os.Root opened at it: a symlink is followed only while it stays
// inside, and that holds at the moment of each read, whatever changed on
// disk since the walk listed it.
type gate struct {
	root *os.Root
	// escape is os.Root's error for a path that leaves the root.
	escape error
}

func openGate(dir string) (*gate, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	// os.Root's error for a path that leaves it is unexported. Asking for
	// the root's parent yields it (without touching the disk), and
	// errors.Is then recognizes it however a call wraps it. Resolving
	// links here instead would be a second implementation of os.Root's
	// rules, free to disagree with the one that guards the reads.
	_, err = r.Lstat("..")
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		r.Close()
		return nil, fmt.Errorf("internal error: os.Root let a path leave it (%v)", err)
	}
	return &gate{root: r, escape: pe.Err}, nil
}

// refused reports whether err is the gate refusing a path that leaves it.
func (g *gate) refused(err error) bool { return err != nil && errors.Is(err, g.escape) }

// outside is the diagnostic for a link that leads out of the repository,
// at the link's own path.
func (g *gate) outside(name, display string) diag.Diagnostic {
	target, _ := g.root.Readlink(name)
	return fileDiag(display, "%s", OutsideLinkMessage(target))
}

// OutsideLinkMessage is how the loader and the masters' extraction of a
// commit both refuse a symlink that leads outside the repository. It
// shows the target as the link has it, never what is there.
func OutsideLinkMessage(target string) string {
	return fmt.Sprintf("symlink to %s points outside the repository; refusing to read it", Excerpt(target))
}

// source is one path argument of Load: its tasks, and for a directory its
// gate, berth.yaml and kustomizations.
type source struct {
	display      string
	arg          string
	sub          bool    // a directory below the repository's root: entries of berth.yaml for elsewhere match nothing here
	gate         *gate   // nil for a file argument
	cfg          *config // nil for a file argument, or when berth.yaml is invalid
	tasks        []task
	first, limit int // its tasks, as indexes into Load's
	diags        []diag.Diagnostic

	// The kustomization roots below a directory argument; with any, the
	// directory (dir), the gate's root (rootDir), both with links resolved
	// (realDir, realRoot), and the repository's top kustomize reads below.
	roots             []*kustRoot
	dir, rootDir      string
	realDir, realRoot string
	realTop           string
	top               *gate
	renderedElsewhere bool // a kustomization of another argument renders one of its own
}

// collect walks one path argument into its tasks.
func collect(o *options, arg string) *source {
	src := &source{display: displayPath(arg, "."), arg: arg}
	abs := arg
	if o.base != "" && !filepath.IsAbs(arg) {
		abs = filepath.Join(o.base, arg)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		src.diags = []diag.Diagnostic{fileDiag(arg, "cannot read: %v", unwrapPathError(err))}
		return src
	}
	if !fi.IsDir() {
		// A file the user named is read as named, a link or not.
		src.tasks = append(src.tasks, &fileTask{o: o, name: abs, display: arg})
		return src
	}
	// The repository's root holds berth.yaml, also when a directory below
	// it is what was named: the gate opens there, and the walk reads the
	// directory only.
	root := repoRoot(o, abs)
	sub := "."
	if root != abs {
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			root, rel = abs, "."
		}
		sub, src.sub = filepath.ToSlash(rel), rel != "."
	}
	if src.gate, err = openGate(root); err != nil {
		src.diags = []diag.Diagnostic{fileDiag(arg, "cannot read: %v", unwrapPathError(err))}
		return src
	}
	rootArg := arg // the root as the user would name it
	if sub != "." {
		up, _ := filepath.Rel(abs, root)
		rootArg = filepath.Join(arg, up)
	}
	if src.cfg, src.diags = readConfig(o, src.gate, rootArg); src.cfg == nil {
		return src
	}
	src.dir, src.rootDir = abs, root
	w := &walker{o: o, g: src.gate, cfg: src.cfg, arg: arg, sub: sub, src: src, cueDirs: map[string]*cueTask{}, skipped: map[string]bool{}, kustDirs: map[string]bool{}}
	if err := fs.WalkDir(src.gate.root.FS(), sub, w.visit); err != nil {
		src.diags = append(src.diags, fileDiag(arg, "cannot walk: %v", unwrapPathError(err)))
	}
	src.tasks = append(src.tasks, w.tasks...)
	for _, dir := range w.order {
		src.tasks = append(src.tasks, w.cueDirs[dir])
	}
	return src
}

// repoRoot is the directory whose berth.yaml applies to dir: the first of
// dir and its parents that holds berth.yaml, going no higher than the git
// top level (a parent holding .git) or, for the masters, the checkout
// (base). Without either, it is dir.
func repoRoot(o *options, dir string) string {
	top := ""
	if o.base != "" {
		top, _ = filepath.Abs(o.base)
	}
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, configFile)); err == nil {
			return d
		}
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil || d == top {
			return dir
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}

// rel is p, a path below the gate's root, relative to the directory walked.
func (w *walker) rel(p string) string {
	if w.sub == "." {
		return p
	}
	if p == w.sub {
		return "."
	}
	return strings.TrimPrefix(p, w.sub+"/")
}

// walker visits the entries of one directory argument.
type walker struct {
	o     *options
	g     *gate
	cfg   *config
	arg   string
	sub   string // the directory walked, relative to g's root ("." for all)
	src   *source
	tasks []task
	// One CUE package per directory, in the order first met.
	cueDirs map[string]*cueTask
	order   []string
	// skipped holds the excluded directories, and those below them: their
	// files are not read, but their links are checked all the same.
	skipped map[string]bool
	// kustDirs holds the directories found to hold a kustomization.
	kustDirs map[string]bool
}

func (w *walker) visit(p string, d fs.DirEntry, err error) error {
	display := displayPath(w.arg, w.rel(p))
	if err != nil {
		w.src.diags = append(w.src.diags, fileDiag(display, "cannot read: %v", unwrapPathError(err)))
		return nil
	}
	skipped := p != w.sub && w.skipped[path.Dir(p)]
	switch {
	case d.IsDir():
		if d.Name() == ".git" {
			return fs.SkipDir
		}
		if skipped || (p != "." && w.cfg.excluded(p)) { // sub itself may be excluded
			w.skipped[p] = true
		}
	case d.Type()&fs.ModeSymlink != 0:
		w.link(p, display, skipped)
	case d.Type().IsRegular() && !skipped && w.reads(p):
		w.add(p, display)
	}
	return nil
}

// link checks a symlink, wherever it is and whatever it is named, as Argo
// CD does (CVE-2022-24904): one that leads out of the repository is an
// error at its own path, whether or not it would be read. One that stays
// inside is read like the file it leads to; links to directories are not
// followed.
func (w *walker) link(p, display string, skipped bool) {
	fi, err := w.g.root.Stat(p)
	switch {
	case w.g.refused(err):
		w.src.diags = append(w.src.diags, w.g.outside(p, display))
	case skipped || !w.reads(p):
	case err != nil:
		w.src.diags = append(w.src.diags, fileDiag(display, "broken symlink: %v", unwrapPathError(err)))
	case fi.Mode().IsRegular():
		w.add(p, display)
	}
}

// reads reports whether the loader reads the file at p as a spec.
func (w *walker) reads(p string) bool {
	if p == configFile {
		return false // read already, as the configuration
	}
	if IsKustomization(p) {
		return w.cfg.included(p)
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json", ".cue":
		return w.cfg.included(p)
	}
	return false
}

func (w *walker) add(p, display string) {
	// A kustomization is rendered, unless berth.yaml skips the kind, as it
	// did before berth rendered them.
	if IsKustomization(p) && !w.cfg.ignoresKind(kustomizeAPIVersion, "Kustomization") {
		if dir := path.Dir(p); !w.kustDirs[dir] {
			w.kustDirs[dir] = true
			w.src.roots = append(w.src.roots, &kustRoot{src: w.src, rel: dir, file: display})
		}
		return
	}
	if strings.EqualFold(path.Ext(p), ".cue") {
		dir := path.Dir(p)
		ct := w.cueDirs[dir]
		if ct == nil {
			ct = &cueTask{o: w.o, g: w.g, cfg: w.cfg}
			w.cueDirs[dir] = ct
			w.order = append(w.order, dir)
		}
		ct.names = append(ct.names, p)
		ct.displays = append(ct.displays, display)
		return
	}
	w.tasks = append(w.tasks, &fileTask{o: w.o, g: w.g, cfg: w.cfg, name: p, display: display})
}

// verdict is what only the whole of a directory argument shows, once its
// tasks have run: berth.yaml entries that matched nothing, and a
// repository without objects.
func (src *source) verdict(out []fileResult) []diag.Diagnostic {
	if src.cfg == nil {
		return nil
	}
	var diags []diag.Diagnostic
	if !src.sub {
		diags = src.cfg.unused()
	}
	objects, errs := 0, countErrors(src.diags)
	for _, fr := range out[src.first:src.limit] {
		errs += countErrors(fr.diags)
		for _, d := range fr.docs {
			if d.obj != nil {
				objects++
			}
		}
	}
	// With errors the revision is refused anyway, and its objects are
	// missing because they failed, not because they are gone; nor are they
	// gone when another argument's kustomization renders them.
	if objects == 0 && errs == 0 && !src.cfg.AllowEmpty && !src.renderedElsewhere {
		diags = append(diags, src.cfg.empty(src.display))
	}
	return diags
}

func countErrors(ds []diag.Diagnostic) int {
	n := 0
	for _, d := range ds {
		if d.Severity == diag.Error {
			n++
		}
	}
	return n
}
