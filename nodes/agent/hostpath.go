package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth/berth/schemas/objects"
)

// prepareHostPath checks a hostPath volume's path against its type, as the
// kubelet does, making it for DirectoryOrCreate and FileOrCreate. The
// loader allowed the path (berth.yaml's allowedHostPaths); the agent
// refuses in any case a path that holds, or lies in, its own data
// directory: the node's key and every pod's Secrets are there.
func prepareHostPath(root string, v *objects.HostPathVolumeSource) error {
	path := filepath.Clean(v.Path)
	if !filepath.IsAbs(path) {
		return &configError{fmt.Sprintf("hostPath %s is not absolute", v.Path)}
	}
	if err := outside(root, path); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing {
		return fmt.Errorf("hostPath %s: %w", path, err)
	}
	switch v.Type {
	case "DirectoryOrCreate":
		if missing {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath %s: %w", path, err)
			}
			fi, missing = nil, false
		}
	case "FileOrCreate":
		if missing {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fmt.Errorf("hostPath %s: %w", path, err)
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("hostPath %s: %w", path, err)
			}
			f.Close()
			fi, missing = nil, false
		}
	}
	if missing {
		return &configError{fmt.Sprintf("hostPath %s does not exist on the node", path)}
	}
	// What was made may be a link planted meanwhile: check where it leads.
	if err := outside(root, path); err != nil {
		return err
	}
	if fi == nil {
		if fi, err = os.Stat(path); err != nil {
			return fmt.Errorf("hostPath %s: %w", path, err)
		}
	}
	want := map[string]func(fs.FileMode) bool{
		"DirectoryOrCreate": fs.FileMode.IsDir,
		"Directory":         fs.FileMode.IsDir,
		"FileOrCreate":      fs.FileMode.IsRegular,
		"File":              fs.FileMode.IsRegular,
		"Socket":            func(m fs.FileMode) bool { return m&fs.ModeSocket != 0 },
		"CharDevice":        func(m fs.FileMode) bool { return m&fs.ModeCharDevice != 0 },
		"BlockDevice":       func(m fs.FileMode) bool { return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0 },
	}[v.Type]
	if want != nil && !want(fi.Mode()) {
		return &configError{fmt.Sprintf("hostPath %s is not of type %s (it is %s)", path, v.Type, fi.Mode().Type())}
	}
	return nil
}

// outside refuses path when it, with its links followed as far as it
// exists, holds root or lies in it.
func outside(root, path string) error {
	real := resolve(path)
	rootReal := resolve(root)
	within := func(a, b string) bool { return a == b || b == "/" || strings.HasPrefix(a, b+"/") }
	if within(real, rootReal) || within(rootReal, real) {
		return &configError{fmt.Sprintf("hostPath %s reaches the agent's data directory %s, which holds the node's key and the pods' Secrets", path, root)}
	}
	return nil
}

// resolve follows the links of path's longest existing ancestor.
func resolve(path string) string {
	path = filepath.Clean(path)
	rest := ""
	for {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			return filepath.Join(real, rest)
		}
		parent := filepath.Dir(path)
		if parent == path {
			return filepath.Join(path, rest)
		}
		rest = filepath.Join(filepath.Base(path), rest)
		path = parent
	}
}
