package appliance

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// File modes as cpio (and stat) encode them.
const (
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeLink = 0o120000
	modeChr  = 0o020000
)

// entry is one initramfs member.
type entry struct {
	mode         uint32 // type and permission bits
	data         []byte // file contents, or a symlink's target
	major, minor uint32 // for device nodes
}

// Archive is an initramfs being assembled. Entries are written sorted by
// path with one fixed time, owner root, and inode numbers in that order, so
// the same members always give the same bytes.
type Archive struct {
	entries map[string]entry
}

// NewArchive returns an empty archive.
func NewArchive() *Archive { return &Archive{entries: map[string]entry{}} }

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// Dir adds a directory (and its parents).
func (a *Archive) Dir(p string, perm uint32) {
	p = clean(p)
	if p == "" {
		return
	}
	a.parents(p)
	a.entries[p] = entry{mode: modeDir | perm}
}

func (a *Archive) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a.entries[d]; !ok {
			a.entries[d] = entry{mode: modeDir | 0o755}
		}
	}
}

// File adds a regular file.
func (a *Archive) File(p string, perm uint32, data []byte) {
	p = clean(p)
	a.parents(p)
	a.entries[p] = entry{mode: modeReg | perm, data: data}
}

// Symlink adds a symbolic link to target.
func (a *Archive) Symlink(p, target string) {
	p = clean(p)
	a.parents(p)
	a.entries[p] = entry{mode: modeLink | 0o777, data: []byte(target)}
}

// CharDev adds a character device node.
func (a *Archive) CharDev(p string, perm, major, minor uint32) {
	p = clean(p)
	a.parents(p)
	a.entries[p] = entry{mode: modeChr | perm, major: major, minor: minor}
}

// Paths lists the members, sorted.
func (a *Archive) Paths() []string {
	out := make([]string, 0, len(a.entries))
	for p := range a.entries {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// WriteCPIO writes the archive in the kernel's "newc" format with every
// mtime set to mtime.
func (a *Archive) WriteCPIO(w io.Writer, mtime int64) error {
	bw := bufio.NewWriter(w)
	ino := uint32(1)
	var off int64
	write := func(name string, e entry, nlink uint32) {
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.mode, 0, 0, nlink, uint32(mtime), len(e.data), 0, 0, e.major, e.minor, len(name)+1, 0)
		ino++
		n, _ := bw.WriteString(hdr)
		m, _ := bw.WriteString(name + "\x00")
		off += int64(n + m)
		pad(bw, &off)
		k, _ := bw.Write(e.data)
		off += int64(k)
		pad(bw, &off)
	}
	for _, p := range a.Paths() {
		e := a.entries[p]
		nlink := uint32(1)
		if e.mode&0o170000 == modeDir {
			nlink = 2
		}
		write(p, e, nlink)
	}
	write("TRAILER!!!", entry{}, 1)
	return bw.Flush()
}

// pad aligns the stream to four bytes, as newc requires after the name and
// after the data.
func pad(w *bufio.Writer, off *int64) {
	for *off%4 != 0 {
		w.WriteByte(0)
		*off++
	}
}

// WriteGzip writes the cpio archive gzip-compressed. The gzip header has
// no name and a zero time, so it does not vary between builds.
func (a *Archive) WriteGzip(w io.Writer, mtime int64) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	if err := a.WriteCPIO(zw, mtime); err != nil {
		return err
	}
	return zw.Close()
}
