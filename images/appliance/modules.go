package appliance

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultModules are the kernel modules the appliance loads, named as the
// kernel names them; their dependencies are added and ordered by
// ModuleOrder. Debian builds all of these as modules.
var DefaultModules = []string{
	// virtio, as qemu and most clouds present it (order from ENVIRONMENT.md
	// comes out of the dependency walk).
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "virtio_rng",
	// common physical and emulated hardware
	"e1000", "e1000e", "ahci", "ata_piix", "sd_mod", "nvme",
	// file systems: the data disk (ext4; its checksums need crc32c, a
	// soft dependency the walk does not follow), the config disk (ext4 or
	// FAT), overlay for containers' root file systems
	"crc32c_generic", "ext4", "vfat", "nls_cp437", "nls_ascii", "overlay",
	// nftables for Services
	"nf_tables", "nft_chain_nat", "nft_ct", "nft_numgen", "nft_masq",
}

// Module is one kernel module file under lib/modules/VERSION.
type Module struct {
	Name string // normalised: '-' becomes '_'
	Path string // relative to lib/modules/VERSION
}

func modName(file string) string {
	base := filepath.Base(file)
	base = strings.TrimSuffix(base, ".ko")
	return strings.ReplaceAll(base, "-", "_")
}

// ModuleOrder returns wanted and everything they depend on, each after its
// dependencies: the order to load them in. Dependencies come from each
// module's own .modinfo "depends=" (Debian's package does not ship
// modules.dep; depmod writes it at install time). Built-in modules are
// skipped; a wanted module that is neither present nor built in is an error.
func ModuleOrder(modDir string, wanted []string) ([]Module, error) {
	index := map[string]string{}
	err := filepath.WalkDir(filepath.Join(modDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(modDir, p)
			index[modName(p)] = rel
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[modName(l)] = true
		}
	}
	var out []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		name = strings.ReplaceAll(name, "-", "_")
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " -> "))
		case 2:
			return nil
		}
		rel, ok := index[name]
		if !ok {
			if builtin[name] {
				state[name] = 2
				return nil
			}
			return fmt.Errorf("kernel module %s not found in %s (wanted by %s)", name, modDir, strings.Join(chain, " -> "))
		}
		state[name] = 1
		deps, err := modDepends(filepath.Join(modDir, rel))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, Module{Name: name, Path: rel})
		return nil
	}
	for _, w := range wanted {
		if err := visit(w, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// modDepends reads "depends=a,b" from a module's .modinfo section.
func modDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
