package appliance

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// earlyCfg is built into both GRUB images. The ISO is found by a marker
// file because under UEFI GRUB starts from the El Torito FAT image, not
// from the ISO file system.
const earlyCfg = `search --no-floppy --set=root --file /boot/berth-appliance
set prefix=($root)/boot/grub
configfile ($root)/boot/grub/grub.cfg
`

// grubCfg boots the kernel and initramfs; the menu waits a second so an
// operator can edit the command line (e.g. add berth.repo=).
const grubCfg = `set timeout=1
set default=0
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
menuentry "berth appliance" {
	linux /boot/vmlinuz %s
	initrd /boot/initramfs.img
}
`

// grubModules are all GRUB needs to find the ISO, show the menu on screen
// and serial port, and boot Linux; built into the images, so the ISO
// carries no module directory.
var grubModules = []string{"iso9660", "search", "search_fs_file", "configfile", "normal", "linux",
	"serial", "terminal", "echo", "test", "part_msdos", "part_gpt", "boot"}

// buildISO makes a hybrid BIOS+UEFI ISO from GRUB images made with
// grub-mkimage, a FAT El Torito image made with mtools, and xorriso.
// grub-mkrescue is not used: it stamps the build's wall-clock time into
// the images, so its ISOs never repeat. Here every tool is given
// SOURCE_DATE_EPOCH (xorriso derives the volume dates, UUID and GPT GUID
// from it; mtools its FAT timestamps) and the FAT serial is fixed.
func buildISO(res *Result, cfg Config) error {
	stage, err := os.MkdirTemp(cfg.OutDir, "iso-stage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	work, err := os.MkdirTemp(cfg.OutDir, "iso-work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	env := []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(cfg.Epoch, 10), "TZ=UTC"}

	if err := os.MkdirAll(filepath.Join(stage, "boot/grub"), 0o755); err != nil {
		return err
	}
	for dest, src := range map[string]string{"boot/vmlinuz": res.Kernel, "boot/initramfs.img": res.Initramfs} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(stage, dest), b, 0o644); err != nil {
			return err
		}
	}
	files := map[string]string{
		"boot/grub/grub.cfg":   fmt.Sprintf(grubCfg, cfg.Cmdline),
		"boot/berth-appliance": "berth appliance ISO marker\n",
	}
	for p, s := range files {
		if err := os.WriteFile(filepath.Join(stage, p), []byte(s), 0o644); err != nil {
			return err
		}
	}
	early := filepath.Join(work, "early.cfg")
	if err := os.WriteFile(early, []byte(earlyCfg), 0o644); err != nil {
		return err
	}
	bios := filepath.Join(stage, "boot/grub/bios.img")
	args := append([]string{"-O", "i386-pc-eltorito", "-o", bios, "-p", "/boot/grub", "-c", early, "biosdisk"}, grubModules...)
	if _, err := run("", env, "grub-mkimage", args...); err != nil {
		return err
	}
	efi := filepath.Join(work, "bootx64.efi")
	args = append([]string{"-O", "x86_64-efi", "-o", efi, "-p", "/boot/grub", "-c", early, "efi_gop", "efi_uga", "fat"}, grubModules...)
	if _, err := run("", env, "grub-mkimage", args...); err != nil {
		return err
	}
	fat := filepath.Join(stage, "boot/grub/efi.img")
	steps := [][]string{
		{"mformat", "-i", fat, "-C", "-f", "2880", "-N", "0", "::"},
		{"mmd", "-i", fat, "::/EFI", "::/EFI/BOOT"},
		{"mcopy", "-m", "-i", fat, efi, "::/EFI/BOOT/BOOTX64.EFI"},
	}
	t := time.Unix(cfg.Epoch, 0)
	os.Chtimes(efi, t, t)
	for _, s := range steps {
		if _, err := run("", env, s[0], s[1:]...); err != nil {
			return err
		}
	}
	filepath.Walk(stage, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, t, t) })
	tmp := res.ISO + ".tmp"
	os.Remove(tmp)
	_, err = run("", env, "xorriso", "-as", "mkisofs", "-quiet", "-r", "-V", "BERTH",
		"-b", "boot/grub/bios.img", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		"--grub2-boot-info", "--grub2-mbr", "/usr/lib/grub/i386-pc/boot_hybrid.img",
		"--efi-boot", "boot/grub/efi.img", "-efi-boot-part", "--efi-boot-image", "--protective-msdos-label",
		"-o", tmp, stage)
	if err != nil {
		return err
	}
	os.Chtimes(tmp, t, t)
	return os.Rename(tmp, res.ISO)
}
