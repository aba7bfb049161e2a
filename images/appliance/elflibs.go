package appliance

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
)

// libDirs are where Debian's multiarch packages put shared libraries.
var libDirs = []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"}

// addDynamic adds the program at roots[0]/prog to the archive at dest,
// with its ELF interpreter and every shared library it needs (found in
// the unpacked packages roots), each copied to the path the loader looks
// in. Symlinks are resolved, so only real files go into the image.
func addDynamic(a *Archive, roots []string, prog, dest string) error {
	data, err := os.ReadFile(filepath.Join(roots[0], prog))
	if err != nil {
		return err
	}
	a.File(dest, 0o755, data)
	seen := map[string]bool{}
	var walk func(path string) error
	walk = func(path string) error {
		f, err := elf.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b := make([]byte, p.Filesz)
				if _, err := p.ReadAt(b, 0); err != nil {
					return err
				}
				interp := string(b[:len(b)-1]) // NUL-terminated
				if !seen[interp] {
					seen[interp] = true
					if err := addResolved(a, roots, interp, interp); err != nil {
						return err
					}
				}
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return err
		}
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			seen[lib] = true
			found := ""
			for _, r := range roots {
				for _, d := range libDirs {
					if _, err := os.Stat(filepath.Join(r, d, lib)); err == nil && found == "" {
						found = filepath.Join(r, d, lib)
					}
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which none of the unpacked packages has", path, lib)
			}
			real, err := filepath.EvalSymlinks(found)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(real)
			if err != nil {
				return err
			}
			a.File("lib/x86_64-linux-gnu/"+lib, 0o755, b)
			if err := walk(real); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(filepath.Join(roots[0], prog))
}

// addResolved copies the file at path (absolute, as seen on the target)
// from whichever root has it, following symlinks inside that root.
func addResolved(a *Archive, roots []string, path, dest string) error {
	for _, r := range roots {
		p := filepath.Join(r, path)
		for range 8 {
			fi, err := os.Lstat(p)
			if err != nil {
				break
			}
			if fi.Mode()&os.ModeSymlink == 0 {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				a.File(dest, 0o755, b)
				return nil
			}
			t, _ := os.Readlink(p)
			if filepath.IsAbs(t) {
				p = filepath.Join(r, t)
			} else {
				p = filepath.Join(filepath.Dir(p), t)
			}
		}
	}
	return fmt.Errorf("%s not found in the unpacked packages", path)
}
