package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Volume is what a block device's first bytes say about it.
type Volume struct {
	Dev   string // /dev/NAME
	FS    string // "ext4" (any ext2/3/4), "vfat", or "" if none recognised
	Label string
	// Blank: the first probeSize bytes are all zero, so nothing is lost by
	// formatting it.
	Blank bool
}

// probeSize is how much of a device is read to decide it is blank: more
// than any partition table or file system puts at its start.
const probeSize = 1 << 20

// Probe reads dev's start and recognises ext and FAT file systems.
func Probe(dev string) (Volume, error) {
	v := Volume{Dev: dev}
	f, err := os.Open(dev)
	if err != nil {
		return v, err
	}
	defer f.Close()
	buf := make([]byte, probeSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return v, err
	}
	buf = buf[:n]
	v.Blank = n > 0 && bytes.Count(buf, []byte{0}) == n
	switch {
	case len(buf) >= 2048 && binary.LittleEndian.Uint16(buf[1024+56:]) == 0xEF53:
		v.FS = "ext4"
		v.Label = cstr(buf[1024+120 : 1024+136])
	case len(buf) >= 512 && buf[510] == 0x55 && buf[511] == 0xAA && string(buf[82:87]) == "FAT32":
		v.FS = "vfat"
		v.Label = strings.TrimSpace(string(buf[71:82]))
	case len(buf) >= 512 && buf[510] == 0x55 && buf[511] == 0xAA && string(buf[54:57]) == "FAT":
		v.FS = "vfat"
		v.Label = strings.TrimSpace(string(buf[43:54]))
	}
	if v.Label == "NO NAME" {
		v.Label = ""
	}
	return v, nil
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// BlockDevices lists /dev names of disks and partitions, sorted, leaving
// out RAM disks, loop devices and CD drives.
func BlockDevices() []string {
	ents, _ := os.ReadDir("/sys/class/block")
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "sr") || strings.HasPrefix(n, "zram") {
			continue
		}
		out = append(out, "/dev/"+n)
	}
	sort.Strings(out)
	return out
}

// isWholeDisk reports whether dev is a disk, not a partition.
func isWholeDisk(dev string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/block", filepath.Base(dev), "partition"))
	return err != nil
}

// hasPartitions reports whether a whole disk has partitions.
func hasPartitions(dev string) bool {
	base := filepath.Base(dev)
	ents, _ := os.ReadDir(filepath.Join("/sys/class/block", base))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), base) {
			return true
		}
	}
	return false
}

// FindData chooses the data disk: the one named, else the volume
// labelled BERTHDATA, else the first blank whole disk (it is formatted).
// It returns the volume and whether it must be formatted first.
func FindData(named string, vols []Volume) (Volume, bool, error) {
	if named != "" {
		for _, v := range vols {
			if v.Dev == named {
				switch {
				case v.FS == "ext4":
					return v, false, nil
				case v.Blank:
					return v, true, nil
				}
				return v, false, fmt.Errorf("%s is neither ext4 nor blank (%s); refusing to format it", named, orNone(v.FS))
			}
		}
		return Volume{}, false, fmt.Errorf("data disk %s not found", named)
	}
	for _, v := range vols {
		if v.Label == DataLabel && v.FS == "ext4" {
			return v, false, nil
		}
	}
	for _, v := range vols {
		if v.Blank && isWholeDisk(v.Dev) && !hasPartitions(v.Dev) {
			return v, true, nil
		}
	}
	return Volume{}, false, nil
}

func orNone(s string) string {
	if s == "" {
		return "unrecognised contents"
	}
	return s
}

// Labels the appliance looks for.
const (
	DataLabel   = "BERTHDATA"
	ConfigLabel = "BERTHCFG"
)
