package gitops

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/schemas"
)

// A commit with a symlink that leads outside the loaded directory is
// rejected at the link's own path, whatever its shape; links that stay
// inside are extracted as links.
func TestExtractRefusesLinksOut(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "token"), []byte(fakeToken), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		links map[string]string // path -> target, beside the example
		path  string            // WithPath
		at    string            // the rejected link; "" if accepted
	}{
		{"absolute", map[string]string{"ns.yaml": filepath.Join(outside, "token")}, "", "ns.yaml"},
		{"dot-dot beyond the root", map[string]string{"sub/ns.yaml": "../../token"}, "", "sub/ns.yaml"},
		{"chain whose last hop leaves", map[string]string{"a.yaml": "b", "b": "sub/c", "sub/c": "../../x"}, "", "a.yaml"},
		{"through a link to a directory", map[string]string{"d": "sub", "e.yaml": "d/../../x"}, "", "e.yaml"},
		{"directory outside", map[string]string{"dir": outside}, "", "dir"},
		{"in a CUE package", map[string]string{"c/a.cue": "/etc/passwd"}, "", "c/a.cue"},
		{"not a spec name", map[string]string{"README": "/etc/shadow"}, "", "README"},
		{"berth.yaml itself", map[string]string{"berth.yaml": "../../../../DATA/master/join-master.token"}, "", "berth.yaml"},
		{"out of the source's path", map[string]string{"deploy/x.yaml": "../app.yaml"}, "deploy", "deploy/x.yaml"},
		{"a loop", map[string]string{"l1.txt": "l2.txt", "l2.txt": "l1.txt"}, "", "l1.txt"},
		{"inside, through a directory link", map[string]string{"d": "sub", "e.yaml": "d/../app.yaml", "sub/f": "."}, "", ""},
		{"inside the source's path", map[string]string{"deploy/x.yaml": "y/../z.txt", "deploy/y/k": "v"}, "deploy", ""},
		{"broken", map[string]string{"gone.txt": "nothing/../.."}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, "main")
			up.copyExample("")
			up.write(map[string]string{"sub/keep": "", "c/keep": "", "deploy/z.txt": "", "deploy/app.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: d}\n"})
			for l, target := range tc.links {
				p := filepath.Join(up.dir, filepath.FromSlash(l))
				os.Remove(p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
			}
			c := up.commit(tc.name)
			var opts []SourceOption
			if tc.path != "" {
				opts = append(opts, WithPath(tc.path))
			}
			s, _ := newTestSyncer(t, up.dir, opts...)
			if _, err := s.src.Fetch(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			err := s.src.Extract(c, dir)
			var te *TreeError
			if tc.at == "" {
				if err != nil {
					t.Fatal(err)
				}
				for l, target := range tc.links {
					if got, err := os.Readlink(filepath.Join(dir, filepath.FromSlash(l))); err != nil || got != target {
						t.Errorf("%s: %q %v", l, got, err)
					}
				}
				return
			}
			if !errors.As(err, &te) || te.Path != tc.at {
				t.Fatalf("Extract = %v, want a TreeError at %s", err, tc.at)
			}
			if !strings.HasPrefix(te.Msg, "symlink") {
				t.Errorf("message %q", te.Msg)
			}
			checkNoLinkOut(t, dir, "")
			rev, err := s.Revision(c)
			if err != nil {
				t.Fatal(err)
			}
			if rev.Status != state.RevisionRejected || len(rev.Diagnostics) != 1 || rev.Diagnostics[0].File != tc.at || len(rev.Objects) != 0 {
				t.Errorf("revision %s %v", rev.Status, rev.Diagnostics)
			}
			t.Log(rev.Diagnostics[0])
		})
	}
}

// The same link gives the same diagnostic from berth validate (the loader
// on a checkout) as from a master (extraction of the commit).
func TestLinkOutSameDiagnosticAsValidate(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	if err := os.Symlink("/etc/shadow", filepath.Join(up.dir, "ns.yaml")); err != nil {
		t.Fatal(err)
	}
	c := up.commit("link")
	s, _ := newTestSyncer(t, up.dir)
	if _, err := s.src.Fetch(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Revision(c)
	if err != nil {
		t.Fatal(err)
	}
	res := schemas.Load([]string{"."}, schemas.WithBase(up.dir))
	if len(rev.Diagnostics) != 1 || len(res.Diagnostics) != 1 || rev.Diagnostics[0].String() != res.Diagnostics[0].String() {
		t.Fatalf("master %v, validate %v", rev.Diagnostics, res.Diagnostics)
	}
}

// checkNoLinkOut asserts that no symlink below dir/base leads out of it,
// asking the kernel and os.Root (two resolvers that are not extract's),
// and that nothing was created beside dir.
func checkNoLinkOut(t *testing.T, dir, base string) {
	t.Helper()
	top := filepath.Join(dir, filepath.FromSlash(base))
	root, err := os.OpenRoot(top)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, escape := root.Lstat("..") // os.Root's refusal, as schemas obtains it
	escape = errors.Unwrap(escape)
	topReal, err := filepath.EvalSymlinks(top)
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(top, p)
		if rel == ".." || strings.HasPrefix(rel, "../") {
			if !d.IsDir() {
				t.Errorf("%s: written outside the extracted path", p)
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, _ := os.Readlink(p)
		if _, err := root.Stat(rel); errors.Is(err, escape) {
			t.Errorf("%s -> %q escapes (os.Root)", rel, target)
		}
		if real, err := filepath.EvalSymlinks(p); err == nil && real != topReal && !strings.HasPrefix(real, topReal+string(filepath.Separator)) {
			t.Errorf("%s -> %q resolves to %s", rel, target, real)
		}
		return nil
	})
}

// crafted builds trees in an in-memory repository, as only a crafted push
// could make them.
type crafted struct {
	t    testing.TB
	repo *git.Repository
}

func newCrafted(t testing.TB) *crafted {
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &crafted{t, repo}
}

func (c *crafted) blob(content string) plumbing.Hash {
	obj := c.repo.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, _ := obj.Writer()
	w.Write([]byte(content))
	w.Close()
	h, err := c.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

func (c *crafted) tree(entries ...object.TreeEntry) *object.Tree {
	tree, err := c.repo.TreeObject(c.treeHash(entries...))
	if err != nil {
		c.t.Fatal(err)
	}
	return tree
}

// treeHash stores entries as given: go-git's encoder would refuse them
// unsorted, and git's own tools would refuse much more.
func (c *crafted) treeHash(entries ...object.TreeEntry) plumbing.Hash {
	obj := c.repo.Storer.NewEncodedObject()
	obj.SetType(plumbing.TreeObject)
	w, _ := obj.Writer()
	for _, e := range entries {
		fmt.Fprintf(w, "%o %s\x00", uint32(e.Mode), e.Name)
		w.Write(e.Hash[:])
	}
	w.Close()
	h, err := c.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

// Size bounds: a file over the limit is written as a hole, never read;
// a commit beyond the total budget, or with too many entries, is refused.
func TestExtractBounds(t *testing.T) {
	c := newCrafted(t)
	big := c.blob(strings.Repeat("x", maxFileBytes+1))
	dir := t.TempDir()
	if err := extract(c.repo, c.tree(object.TreeEntry{Name: "big.yaml", Mode: filemode.Regular, Hash: big}), "", dir, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "big.yaml"))
	if err != nil || fi.Size() != maxFileBytes+1 {
		t.Fatalf("big.yaml: %v %v", fi, err)
	}
	res := schemas.Load([]string{"."}, schemas.WithBase(dir))
	if len(res.Diagnostics) != 1 || !strings.HasPrefix(res.Diagnostics[0].String(), "big.yaml:1:1: error: file is larger than the limit") {
		t.Errorf("loader: %v", res.Diagnostics)
	}

	full := c.blob(strings.Repeat("y", maxFileBytes))
	var entries []object.TreeEntry
	for i := range maxTreeBytes/maxFileBytes + 1 {
		entries = append(entries, object.TreeEntry{Name: "f" + string(rune('a'+i)), Mode: filemode.Regular, Hash: full})
	}
	var te *TreeError
	err = extract(c.repo, c.tree(entries...), "", t.TempDir(), nil)
	if !errors.As(err, &te) || te.Path != "fq" || !strings.Contains(te.Msg, "more than 64 MiB") {
		t.Errorf("over the total: %v", err)
	}

	small := c.blob("a: 1\n")
	entries = entries[:0]
	for i := range maxTreeEntries + 1 {
		entries = append(entries, object.TreeEntry{Name: "f" + string(rune(0x4e00+i)), Mode: filemode.Regular, Hash: small})
	}
	err = extract(c.repo, c.tree(entries...), "", t.TempDir(), nil)
	if !errors.As(err, &te) || te.Path != "." || !strings.Contains(te.Msg, "more than 20000 files") {
		t.Errorf("too many entries: %v", err)
	}
	err = extract(c.repo, c.tree(object.TreeEntry{Name: strings.Repeat("n", 256), Mode: filemode.Regular, Hash: small}), "", t.TempDir(), nil)
	if !errors.As(err, &te) || !strings.Contains(te.Msg, "invalid file name") {
		t.Errorf("long name: %v", err)
	}
}

// FuzzExtract extracts crafted trees (odd names, nested directories,
// symlinks with any target, under a source path or not) and asserts that
// nothing is written outside the extracted path, that no link left in it
// leads out, and that every refusal is a TreeError.
//
// A line of the input is one entry: "f path", "x path" (executable),
// "l path -> target" or "g path" (a submodule).
func FuzzExtract(f *testing.F) {
	for _, seed := range []string{
		"f a.yaml\nl b.yaml -> a.yaml",
		"l a -> /etc/passwd",
		"l a -> ../x",
		"f d/e/f.yaml\nl d/l -> ../..\nl d/m -> l/x",
		"l a -> b\nl b -> c\nl c -> a",
		"l a -> d/../../x\nf d/k",
		"l d -> .\nl x -> d/d/d/d/../../../..",
		"f ..\nf .git/config",
		"f a\nf a",
		"l a/b -> ../../s/k\nf k",
		"g m\nl a -> m/../..",
		"f a.yaml\nl b -> a.yaml/..",
		"l a -> " + strings.Repeat("x/", 40) + "..",
		"f d/\nf d/e", // a directory holding an entry without a name
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, spec string, underBase bool) {
		lines := strings.Split(spec, "\n")
		if len(lines) > 64 || len(spec) > 8192 {
			return
		}
		c := newCrafted(t)
		top := &dirSpec{}
		for _, line := range lines {
			kind, rest, _ := strings.Cut(line, " ")
			p, target, isLink := strings.Cut(rest, " -> ")
			var e object.TreeEntry
			switch {
			case kind == "f":
				e = object.TreeEntry{Mode: filemode.Regular, Hash: c.blob("a: 1\n")}
			case kind == "x":
				e = object.TreeEntry{Mode: filemode.Executable, Hash: c.blob("#!/bin/sh\n")}
			case kind == "l" && isLink:
				e = object.TreeEntry{Mode: filemode.Symlink, Hash: c.blob(target)}
			case kind == "g":
				e = object.TreeEntry{Mode: filemode.Submodule, Hash: plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")}
			default:
				continue
			}
			top.add(strings.Split(p, "/"), e)
		}
		tree, err := c.repo.TreeObject(c.treeHash(top.entries(c)...))
		if err != nil {
			if !errors.Is(err, object.ErrMalformedTree) {
				t.Fatal(err)
			}
			return // not even a tree to extract; one below it is a TreeError
		}
		base := ""
		if underBase {
			base = "s"
			root := c.tree(object.TreeEntry{Name: "s", Mode: filemode.Dir, Hash: tree.Hash}, object.TreeEntry{Name: "k", Mode: filemode.Regular, Hash: c.blob("outside")})
			if tree, err = root.Tree("s"); err != nil {
				t.Fatal(err)
			}
		}
		scratch := filepath.Join(t.TempDir(), "scratch")
		if err := os.Mkdir(scratch, 0o755); err != nil {
			t.Fatal(err)
		}
		err = extract(c.repo, tree, base, scratch, nil)
		var te *TreeError
		if err != nil && !errors.As(err, &te) {
			t.Fatalf("not a TreeError: %v", err)
		}
		if got, _ := os.ReadDir(filepath.Dir(scratch)); len(got) != 1 {
			t.Fatalf("written beside the scratch dir: %v", got)
		}
		checkNoLinkOut(t, scratch, base)
	})
}

// dirSpec is a directory of a crafted tree being built.
type dirSpec struct {
	files []object.TreeEntry
	names []string
	dirs  map[string]*dirSpec
}

func (d *dirSpec) add(path []string, e object.TreeEntry) {
	if len(path) == 1 {
		e.Name = path[0]
		d.files = append(d.files, e)
		return
	}
	if d.dirs == nil {
		d.dirs = map[string]*dirSpec{}
	}
	sub := d.dirs[path[0]]
	if sub == nil {
		sub = &dirSpec{}
		d.dirs[path[0]] = sub
		d.names = append(d.names, path[0])
	}
	sub.add(path[1:], e)
}

func (d *dirSpec) entries(c *crafted) []object.TreeEntry {
	out := append([]object.TreeEntry(nil), d.files...)
	for _, n := range d.names {
		out = append(out, object.TreeEntry{Name: n, Mode: filemode.Dir, Hash: c.treeHash(d.dirs[n].entries(c)...)})
	}
	return out
}
