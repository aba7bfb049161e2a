package appliance

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// debCache downloads Debian packages with apt-get (never installing them)
// and unpacks them with dpkg -x, keeping both under dir so that a second
// build reuses them.
type debCache struct {
	dir string
}

// fetch downloads pkg (optionally "name=version") unless already cached,
// and returns the .deb's path.
func (c *debCache) fetch(pkg string) (string, error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return "", err
	}
	// --print-uris names the exact file apt would fetch, so a cached copy
	// of the same version is found without asking the mirror for it.
	// Run where the .deb is not: apt prints nothing for a file already in
	// its working directory.
	out, err := run(os.TempDir(), nil, "apt-get", "download", "--print-uris", pkg)
	if err != nil {
		return "", err
	}
	fields := strings.Fields(out)
	if len(fields) < 2 {
		return "", fmt.Errorf("apt-get download --print-uris %s: no package (is `apt-get update` done?)", pkg)
	}
	file := filepath.Join(c.dir, fields[1])
	if _, err := os.Stat(file); err == nil {
		return file, nil
	}
	if _, err := run(c.dir, nil, "apt-get", "download", "-q", pkg); err != nil {
		return "", err
	}
	if _, err := os.Stat(file); err != nil {
		return "", fmt.Errorf("apt-get download %s did not leave %s", pkg, fields[1])
	}
	return file, nil
}

// extract unpacks a .deb once and returns the directory it is in.
func (c *debCache) extract(deb string) (string, error) {
	dir := strings.TrimSuffix(deb, ".deb") + ".x"
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	os.RemoveAll(dir)
	if _, err := run("", nil, "dpkg", "-x", deb, dir); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644)
}

// get fetches and unpacks pkg.
func (c *debCache) get(pkg string) (string, error) {
	deb, err := c.fetch(pkg)
	if err != nil {
		return "", err
	}
	return c.extract(deb)
}

// kernelPackage resolves the linux-image-amd64 metapackage to the versioned
// package it depends on (e.g. linux-image-6.1.0-56-amd64=6.1.192-2).
func (c *debCache) kernelPackage(meta string) (string, error) {
	deb, err := c.fetch(meta)
	if err != nil {
		return "", err
	}
	dep, err := run("", nil, "dpkg-deb", "-f", deb, "Depends")
	if err != nil {
		return "", err
	}
	// "linux-image-6.1.0-56-amd64 (= 6.1.192-2)"
	first := strings.TrimSpace(strings.Split(dep, ",")[0])
	name, rest, _ := strings.Cut(first, " ")
	if v, ok := strings.CutPrefix(strings.TrimSpace(rest), "(= "); ok {
		return name + "=" + strings.TrimSuffix(v, ")"), nil
	}
	return name, nil
}

func run(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.String(), nil
}
