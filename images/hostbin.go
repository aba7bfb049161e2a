package images

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostBinary packs the host's dynamically linked program prog (an
// absolute path, such as /usr/bin/redis-server from Debian's package) into
// an image whose entrypoint it is: the program at its own path, its ELF
// interpreter, and every shared library it needs, found recursively
// through DT_NEEDED where the dynamic loader looks without a cache (the
// image has no /etc/ld.so.cache). Libraries a program dlopens at run time
// (NSS modules, plugins) are not found this way.
//
// A symlink at prog is packed as the file it leads to, under prog's name:
// Debian's redis-server is a link to redis-check-rdb, which tells the two
// apart by argv[0].
func HostBinary(ctx context.Context, prog string, opts ...Option) (v1.Image, error) {
	if !filepath.IsAbs(prog) {
		return nil, fmt.Errorf("host binary %s: want an absolute path", prog)
	}
	files, err := elfClosure(prog)
	if err != nil {
		return nil, fmt.Errorf("host binary %s: %w", prog, err)
	}
	return build(ctx, files, []string{prog}, opts)
}

// elfClosure returns prog and what it needs to run as layer files, each
// host file once: a second path to the same file (the interpreter is also
// a library libc needs) is a symlink to the first.
func elfClosure(prog string) ([]file, error) {
	exe, err := elf.Open(prog)
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	dirs, err := libDirs(exe.Machine)
	if err != nil {
		return nil, err
	}
	var (
		files []file
		dest  = map[string]string{} // real host path -> its path in the image
		seen  = map[string]bool{}   // library names and paths already looked up
	)
	add := func(hostPath, imagePath string) (bool, error) {
		real, err := filepath.EvalSymlinks(hostPath)
		if err != nil {
			return false, err
		}
		imagePath = strings.TrimPrefix(imagePath, "/")
		if first, ok := dest[real]; ok {
			files = append(files, file{name: imagePath, mode: 0o777, link: "/" + first})
			return false, nil
		}
		fi, err := os.Stat(real)
		if err != nil {
			return false, err
		}
		data, err := os.ReadFile(real)
		if err != nil {
			return false, err
		}
		dest[real] = imagePath
		files = append(files, file{name: imagePath, mode: int64(fi.Mode().Perm()), data: data})
		return true, nil
	}

	var walk func(f *elf.File, name string) error
	walk = func(f *elf.File, name string) error {
		for _, p := range f.Progs {
			if p.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return fmt.Errorf("%s: interpreter: %w", name, err)
			}
			interp := strings.TrimRight(string(b), "\x00")
			if !seen[interp] {
				seen[interp] = true
				if _, err := add(interp, interp); err != nil {
					return fmt.Errorf("%s: interpreter: %w", name, err)
				}
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			seen[lib] = true
			found, lf, err := findLib(lib, dirs, f)
			if err != nil {
				return fmt.Errorf("%s needs %s: %w", name, lib, err)
			}
			isNew, err := add(found, found)
			if err == nil && isNew {
				err = walk(lf, lib)
			}
			lf.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := add(prog, prog); err != nil {
		return nil, err
	}
	if err := walk(exe, prog); err != nil {
		return nil, err
	}
	return withParents(files), nil
}

// libDirs are the dynamic loader's system search path on Debian, in its
// order (ld.so --help lists it).
func libDirs(m elf.Machine) ([]string, error) {
	triplet, ok := map[elf.Machine]string{
		elf.EM_X86_64:  "x86_64-linux-gnu",
		elf.EM_AARCH64: "aarch64-linux-gnu",
	}[m]
	if !ok {
		return nil, fmt.Errorf("no library directories known for %s", m)
	}
	return []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib", "/usr/lib"}, nil
}

// findLib opens the first lib in dirs (or at lib, a path) of the same
// class and machine as the program, skipping others as the loader does.
func findLib(lib string, dirs []string, of *elf.File) (string, *elf.File, error) {
	candidates := []string{lib}
	if !strings.Contains(lib, "/") {
		candidates = candidates[:0]
		for _, d := range dirs {
			candidates = append(candidates, path.Join(d, lib))
		}
	}
	for _, c := range candidates {
		f, err := elf.Open(c)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if f.Class == of.Class && f.Machine == of.Machine {
			return c, f, nil
		}
		f.Close()
	}
	return "", nil, fmt.Errorf("not in %s", strings.Join(dirs, ", "))
}

// withParents adds a directory entry for each parent of the files that
// has none, so the layer says each directory's mode.
func withParents(files []file) []file {
	have := map[string]bool{}
	for _, f := range files {
		have[f.name] = true
	}
	for _, f := range files {
		for d := path.Dir(strings.TrimSuffix(f.name, "/")); d != "." && !have[d+"/"]; d = path.Dir(d) {
			have[d+"/"] = true
			files = append(files, file{name: d + "/", mode: 0o755})
		}
	}
	return files
}
