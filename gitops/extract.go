package gitops

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/berth/berth/schemas"
)

// Extract writes the files of commit sha below the source's path into dir,
// at their paths relative to the repository root (dir/<path>/...), so that
// the loader's positions name files as the repository does. dir must be
// empty. It reads the object store directly: no worktree, index or
// checkout state that a crash could leave half-updated. A path missing in
// the commit writes nothing; the loader then reports it.
//
// A commit is refused with a *TreeError, at the path concerned, when its
// tree is one no checkout could hold (crafted objects), when a symlink in
// it leads outside the source's path (resolved against the commit's own
// tree, not the disk), or when it is larger than a sync may hold. A file
// over the loader's limit is never read from the object store: it is
// written as a hole of its size, which the loader refuses from its size,
// at its path, exactly as berth validate does.
func (s *Source) Extract(sha, dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return extractCommit(s.repo, s.subPath, sha, dir)
}

// extractCommit is Extract of any repository, for any sub-path.
func extractCommit(repo *git.Repository, subPath, sha, dir string) error {
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return fmt.Errorf("commit %s: %w", sha, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return treeError(".", err)
	}
	top, base := tree, subPath
	if base != "" {
		tree, err = tree.Tree(base)
		if errors.Is(err, object.ErrDirectoryNotFound) {
			return nil
		}
		if err != nil {
			return treeError(base, err)
		}
		// A kustomize overlay names its bases beside the path (../base):
		// with a kustomization below the path the whole tree is written, as
		// berth validate reads the whole repository; the loader still loads
		// the path alone.
		if kust, err := holdsKustomization(tree); err != nil {
			return treeError(base, err)
		} else if kust {
			tree, base = top, ""
		}
	}
	return extract(repo, tree, base, dir, top)
}

// holdsKustomization reports whether a kustomization file is in tree, at
// any depth, reading names only.
func holdsKustomization(tree *object.Tree) (bool, error) {
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for n := 0; n <= maxTreeEntries; n++ {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if e.Mode != filemode.Dir && schemas.IsKustomization(path.Base(name)) {
			return true, nil
		}
	}
	return false, nil // the extraction refuses a tree this large
}

// extract writes tree, found at base in its commit, below dir; with a base,
// also top's berth.yaml, which the loader applies to the base as to the
// whole repository.
func extract(repo *git.Repository, tree *object.Tree, base, dir string, top *object.Tree) error {
	x := extractor{repo: repo, root: dir, base: base, nodes: map[string]node{}}
	if err := x.tree(tree, base, 0); err != nil {
		return err
	}
	if base != "" && top != nil {
		if err := x.rootConfig(top); err != nil {
			return err
		}
	}
	// Links last, so no file is ever written through one, and each only
	// once the whole tree is known to resolve it.
	for _, l := range x.links {
		if err := x.contained(l); err != nil {
			return err
		}
	}
	for _, l := range x.links {
		if err := os.Symlink(x.nodes[l].target, x.dst(l)); err != nil {
			return err
		}
	}
	return nil
}

// rootConfig writes the repository root's berth.yaml, if it is a file; a
// link there is refused, since only the base's links are resolved.
func (x *extractor) rootConfig(top *object.Tree) error {
	const name = "berth.yaml"
	e, err := top.FindEntry(name)
	if errors.Is(err, object.ErrEntryNotFound) {
		return nil
	}
	if err != nil {
		return treeError(name, err)
	}
	switch e.Mode {
	case filemode.Regular, filemode.Deprecated, filemode.Executable:
		x.nodes[name] = node{mode: filemode.Regular}
		return x.blob(e.Hash, name)
	case filemode.Symlink:
		return &TreeError{name, "berth.yaml at the repository's root is a symlink; with a source path, berth reads it only as a file"}
	}
	return nil
}

// TreeError is a commit refused for its tree: names git itself would not
// check out (only possible in crafted objects), a symlink out of the
// repository, or a tree beyond what a sync may hold. It is a verdict on
// the commit (rejected), not a reason to retry.
type TreeError struct {
	Path string // relative to the repository root
	Msg  string
}

func (e *TreeError) Error() string { return e.Path + ": " + e.Msg }

// treeError is a TreeError when the tree object at p cannot be decoded (a
// crafted object); other errors (reading the store) are not a verdict.
func treeError(p string, err error) error {
	if errors.Is(err, object.ErrMalformedTree) {
		return &TreeError{p, "the commit's tree object is malformed"}
	}
	return fmt.Errorf("%s: %w", p, err)
}

// Bounds of one extraction.
const (
	// maxFileBytes is the loader's limit: larger files are not read.
	maxFileBytes = schemas.DefaultMaxFileBytes
	// maxTreeBytes bounds what is written of all the files of a commit,
	// and so what loading it may hold in memory; files over maxFileBytes
	// cost nothing and do not count.
	maxTreeBytes = 64 << 20
	// maxTreeEntries bounds the files, links and directories of a commit.
	maxTreeEntries = 20_000
	// maxTreeDepth bounds recursion on hostile trees.
	maxTreeDepth = 64
	// maxNameBytes is NAME_MAX, and maxPathBytes leaves PATH_MAX room for
	// the scratch directory: no checkout could hold longer ones.
	maxNameBytes = 255
	maxPathBytes = 2048
	// maxLinkTarget is PATH_MAX: no longer target resolves.
	maxLinkTarget = 4096
	// maxLinkHops is Linux's limit on the links one lookup follows
	// (MAXSYMLINKS): a checkout could not resolve a longer chain either.
	maxLinkHops = 40
	// maxResolveSteps bounds the path components all the links of one
	// commit may take to resolve, so that many long, nested targets cost
	// a bounded time.
	maxResolveSteps = 1 << 20
)

// node is one path of the extracted tree, for resolving links.
type node struct {
	mode   filemode.FileMode
	target string // of a symlink
}

type extractor struct {
	repo  *git.Repository
	root  string
	base  string          // the extracted directory, relative to the repository root
	nodes map[string]node // by path relative to the repository root
	links []string        // paths of the symlinks, in tree order
	bytes int64           // written so far
	steps int             // spent resolving links
}

func (x *extractor) dst(p string) string { return filepath.Join(x.root, filepath.FromSlash(p)) }

func (x *extractor) tree(t *object.Tree, rel string, depth int) error {
	if depth > maxTreeDepth {
		return &TreeError{rel, fmt.Sprintf("directories nested deeper than %d", maxTreeDepth)}
	}
	if err := os.MkdirAll(x.dst(rel), 0o755); err != nil {
		return err
	}
	for _, e := range t.Entries {
		// Git refuses such names; a crafted tree may not, and they would
		// escape the scratch directory or shadow the loader's .git skip.
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\\\x00") || strings.EqualFold(e.Name, ".git") || len(e.Name) > maxNameBytes {
			return &TreeError{path.Join(rel, "."), fmt.Sprintf("invalid file name %s in the commit's tree", schemas.Excerpt(e.Name))}
		}
		p := path.Join(rel, e.Name)
		if len(p) > maxPathBytes {
			return &TreeError{rel, fmt.Sprintf("a path in the commit is longer than %d bytes", maxPathBytes)}
		}
		if _, seen := x.nodes[p]; seen {
			return &TreeError{p, "the commit's tree names this path twice"}
		}
		if len(x.nodes) == maxTreeEntries {
			return &TreeError{path.Join(x.base, "."), fmt.Sprintf("the commit holds more than %d files and directories here; berth loads at most that many", maxTreeEntries)}
		}
		switch e.Mode {
		case filemode.Dir:
			x.nodes[p] = node{mode: e.Mode}
			sub, err := x.repo.TreeObject(e.Hash)
			if err != nil {
				return treeError(p, err)
			}
			if err := x.tree(sub, p, depth+1); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			x.nodes[p] = node{mode: filemode.Regular}
			if err := x.blob(e.Hash, p); err != nil {
				return err
			}
		case filemode.Symlink:
			target, err := x.linkTarget(e.Hash, p)
			if err != nil {
				return err
			}
			x.nodes[p] = node{mode: e.Mode, target: target}
			x.links = append(x.links, p)
		default:
			// Submodules (gitlinks) have no content here, and no path: a
			// link into one resolves to nothing.
		}
	}
	return nil
}

// size is a blob's size from its object header, without reading it.
func (x *extractor) size(h plumbing.Hash, p string) (int64, error) {
	n, err := x.repo.Storer.EncodedObjectSize(h)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return n, nil
}

func (x *extractor) linkTarget(h plumbing.Hash, p string) (string, error) {
	n, err := x.size(h, p)
	if err != nil {
		return "", err
	}
	if n == 0 || n >= maxLinkTarget {
		return "", &TreeError{p, "symlink with an invalid target"}
	}
	b, err := x.read(h, p)
	if err != nil {
		return "", err
	}
	if strings.IndexByte(string(b), 0) >= 0 {
		return "", &TreeError{p, "symlink with an invalid target"}
	}
	return string(b), nil
}

func (x *extractor) read(h plumbing.Hash, p string) ([]byte, error) {
	b, err := x.repo.BlobObject(h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	r, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, b.Size))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return out, nil
}

func (x *extractor) blob(h plumbing.Hash, p string) error {
	n, err := x.size(h, p)
	if err != nil {
		return err
	}
	if n <= maxFileBytes {
		if x.bytes += n; x.bytes > maxTreeBytes {
			return &TreeError{p, fmt.Sprintf("the commit's files add up to more than %d MiB here; berth loads at most that much", maxTreeBytes>>20)}
		}
	}
	// O_EXCL as a second guard: nothing is ever written over.
	f, err := os.OpenFile(x.dst(p), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if n > maxFileBytes {
		// Not a byte of it leaves the object store: a hole of its size
		// costs no disk and lets the loader refuse it from its size.
		return errors.Join(f.Truncate(n), f.Close())
	}
	b, err := x.read(h, p)
	if err == nil {
		_, err = f.Write(b)
	}
	return errors.Join(err, f.Close())
}

// contained refuses the link at p if it leads outside the extracted
// directory, resolving it, and the links it meets, against the commit's
// tree as the kernel would in a checkout: component by component, ".."
// from where a link physically is, absolute targets outside at once. A
// path that meets a missing entry or a file stops there (the kernel fails
// with ENOENT or ENOTDIR), so it cannot leave. Only the source's path is
// extracted, so a link to elsewhere in the repository is refused too: the
// loader could not read it.
func (x *extractor) contained(p string) error {
	floor := 0
	if x.base != "" {
		floor = strings.Count(x.base, "/") + 1
	}
	var dir []string // where resolution stands, from the repository root
	if d := path.Dir(p); d != "." {
		dir = strings.Split(d, "/")
	}
	target := x.nodes[p].target
	outside := &TreeError{p, schemas.OutsideLinkMessage(target)}
	if path.IsAbs(target) {
		return outside
	}
	parts := strings.Split(target, "/")
	hops := 0
	for i := 0; i < len(parts); i++ {
		if x.steps++; x.steps > maxResolveSteps {
			return &TreeError{p, "the commit's symlinks take too long to resolve"}
		}
		switch c := parts[i]; c {
		case "", ".":
		case "..":
			if len(dir) == floor {
				return outside
			}
			dir = dir[:len(dir)-1]
		default:
			n, ok := x.nodes[path.Join(path.Join(dir...), c)]
			switch {
			case !ok:
				return nil
			case n.mode == filemode.Dir:
				dir = append(dir, c)
			case n.mode == filemode.Symlink:
				if hops++; hops > maxLinkHops {
					return &TreeError{p, fmt.Sprintf("symlink chain longer than %d links", maxLinkHops)}
				}
				if path.IsAbs(n.target) {
					return outside
				}
				parts = append(strings.Split(n.target, "/"), parts[i+1:]...)
				i = -1
			default:
				return nil
			}
		}
	}
	return nil
}
