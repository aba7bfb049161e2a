#!/usr/bin/env bash
# The project's one set-up step, used by `make demo` and `make test`: it
# installs what berth needs from Debian's packages when missing, and
# downloads the Go modules. Safe to run again; it does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages this tree needs, and the command each provides (so a
# machine that has the command by other means is left alone).
packages=(
	"git:git"
	"containerd:containerd"
	"runc:runc"
	"containernetworking-plugins:/usr/lib/cni/bridge"
	"nftables:nft"
	"iproute2:ip"
	"busybox-static:busybox"
	"docker-registry:docker-registry"
	"curl:curl"
	# the shop example's Redis is Debian's redis-server, packed into an image
	# (images.HostBinary); the images test and the e2e test run it
	"redis-server:redis-server"
	# the store benchmark runs etcd side by side (bench/store_test.go)
	"etcd-server:etcd"
	# the DNS benchmark runs dnsmasq side by side under dnsperf (bench/dns_test.go)
	"dnsperf:dnsperf"
	"dnsmasq-base:dnsmasq"
	# the dashboard's browser test drives it headless (test/e2e/ui_test.go)
	"chromium:chromium"
	# the appliance image (make image) and its boot test
	"qemu-system-x86:qemu-system-x86_64"
	"grub-pc-bin:/usr/lib/grub/i386-pc/boot_hybrid.img"
	"grub-efi-amd64-bin:/usr/lib/grub/x86_64-efi/linux.mod"
	"grub-common:grub-mkimage"
	"xorriso:xorriso"
	"mtools:mformat"
	"cpio:cpio"
	"e2fsprogs:mke2fs"
)

missing=()
for entry in "${packages[@]}"; do
	pkg=${entry%%:*} cmd=${entry#*:}
	command -v "$cmd" >/dev/null 2>&1 || [[ -x $cmd ]] || dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "setup: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The image build fetches Debian's kernel with `apt-get download`, which
# needs package lists (container images often ship without them).
if ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
	if [[ $(id -u) -eq 0 ]]; then
		apt-get update -qq
	else
		echo "setup: apt has no package lists; run apt-get update as root (make image needs them)" >&2
	fi
fi

export PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null 2>&1; then
	echo "setup: Go is not installed; berth needs Go 1.26 (https://go.dev/dl/) at /usr/local/go or on PATH" >&2
	exit 1
fi
go mod download
