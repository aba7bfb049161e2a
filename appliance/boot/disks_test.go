package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Probe recognises what mke2fs and mtools write, and blank disks.
func TestProbe(t *testing.T) {
	dir := t.TempDir()
	img := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 8<<20); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s (test/setup.sh installs e2fsprogs and mtools)", name, err, out)
		}
	}
	blank := img("blank")
	ext := img("ext")
	run("mke2fs", "-q", "-F", "-t", "ext4", "-L", DataLabel, ext)
	fat := img("fat")
	run("mformat", "-i", fat, "-v", ConfigLabel, "::")

	cases := []struct {
		path, fs, label string
		blank           bool
	}{{blank, "", "", true}, {ext, "ext4", DataLabel, false}, {fat, "vfat", ConfigLabel, false}}
	var vols []Volume
	for _, c := range cases {
		v, err := Probe(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if v.FS != c.fs || v.Label != c.label || v.Blank != c.blank {
			t.Errorf("%s: got %+v", filepath.Base(c.path), v)
		}
		vols = append(vols, v)
	}

	// The labelled disk wins over a blank one; a blank one is taken (to be
	// formatted) only when there is none; a named disk with a foreign file
	// system is never formatted.
	if v, format, err := FindData("", vols); err != nil || v.Dev != ext || format {
		t.Errorf("labelled: %+v %v %v", v, format, err)
	}
	if v, format, err := FindData("", vols[:1]); err != nil || v.Dev != blank || !format {
		t.Errorf("blank: %+v %v %v", v, format, err)
	}
	if v, _, err := FindData("", vols[2:]); err != nil || v.Dev != "" {
		t.Errorf("only a FAT disk: %+v %v", v, err)
	}
	if _, _, err := FindData(fat, vols); err == nil {
		t.Errorf("named FAT disk: no error")
	}
}
