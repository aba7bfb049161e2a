package appliance

import (
	"bytes"
	"compress/gzip"
	"os/exec"
	"strings"
	"testing"
)

// The archive is read back by GNU cpio, in sorted order with the fixed
// time, and two writes give the same bytes.
func TestArchive(t *testing.T) {
	build := func() []byte {
		a := NewArchive()
		a.File("bin/berth", 0o755, []byte("#!binary"))
		a.Symlink("init", "bin/berth")
		a.CharDev("dev/console", 0o600, 5, 1)
		a.File("lib/modules/x/kernel/a.ko", 0o644, []byte("abc"))
		var b bytes.Buffer
		if err := a.WriteGzip(&b, 1700000000); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	one, two := build(), build()
	if !bytes.Equal(one, two) {
		t.Fatal("two writes of the same archive differ")
	}
	// gzip header: no name, zero mtime.
	if one[3] != 0 || !bytes.Equal(one[4:8], []byte{0, 0, 0, 0}) {
		t.Fatalf("gzip header varies: % x", one[:10])
	}
	zr, err := gzip.NewReader(bytes.NewReader(one))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = zr
	cmd.Env = []string{"TZ=UTC"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio (test/setup.sh installs it): %v", err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "... Nov 14  2023 NAME": the name follows the year.
		_, name, ok := strings.Cut(l, " 2023 ")
		if !ok {
			t.Errorf("not the fixed time: %s", l)
		}
		names = append(names, name)
	}
	want := "bin|bin/berth|dev|dev/console|init -> bin/berth|lib|lib/modules|lib/modules/x|lib/modules/x/kernel|lib/modules/x/kernel/a.ko"
	if got := strings.Join(names, "|"); got != want {
		t.Fatalf("members:\n%s\nwant\n%s", got, want)
	}
}
