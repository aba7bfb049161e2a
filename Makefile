# berth: one static binary. `make demo` runs the main job, `make test` the
# whole suite; both run the idempotent set-up step first.
SHELL   := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 10s

.PHONY: all deps build image demo demo-stop test lint unit fuzz bench clean

all: build

deps:
	@./test/setup.sh

# CGO_ENABLED=0: the binary must run from the appliance's initramfs.
build: deps
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o out/berth ./cmd/berth

# The master's bootable image: out/vmlinuz + out/initramfs.img (PXE, qemu
# -kernel/-initrd) and out/berth-appliance.iso (BIOS and UEFI). Timestamps
# come from the last commit, so a clean tree rebuilds to the same bytes.
image: build
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
		$(GO) run ./images/appliance/mkimage -berth out/berth -out out -cache out/cache/debs

# The main job: validate the examples, then run the hello example on this
# machine with berth up and show its pods (see test/demo.sh).
demo: build
	out/berth validate examples/hello
	out/berth validate examples/cue-app
	./test/demo.sh

demo-stop:
	out/berth down --data $(CURDIR)/out/demo
	-kill $$(cat out/demo/registry/pid 2>/dev/null) 2>/dev/null

test: deps lint unit fuzz

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [[ -n "$$unformatted" ]]; then echo "not gofmt-clean:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# The appliance boot test (test/e2e) builds the image and boots it three
# times under qemu software emulation, hence the time-out above the default.
unit:
	$(GO) test -count=1 -timeout 40m ./...

# Each fuzz target briefly, on top of its seed corpus (which `unit` runs).
# Minimizing new inputs would take most of so short a run: skip it.
FUZZ = $(GO) test -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1x -fuzz
fuzz:
	$(FUZZ) '^FuzzLoadYAML$$' ./schemas/
	$(FUZZ) '^FuzzLoadJSON$$' ./schemas/
	$(FUZZ) '^FuzzLoadCUE$$' ./schemas/
	$(FUZZ) '^FuzzCheckerAgreesWithCUE$$' ./schemas/
	$(FUZZ) '^FuzzAppendJSONString$$' ./schemas/
	$(FUZZ) '^FuzzExtract$$' ./gitops/
	$(FUZZ) '^FuzzFSMApply$$' ./appliance/store/
	$(FUZZ) '^FuzzRequests$$' ./appliance/api/
	$(FUZZ) '^FuzzNames$$' ./schemas/names/
	$(FUZZ) '^FuzzJoinRequest$$' ./appliance/api/
	$(FUZZ) '^FuzzWebhookSignature$$' ./appliance/api/
	$(FUZZ) '^FuzzLoadCA$$' ./appliance/pki/
	$(FUZZ) '^FuzzPinnedFingerprint$$' ./appliance/pki/
	$(FUZZ) '^FuzzVerify$$' ./appliance/auth/
	$(FUZZ) '^FuzzReadSnapshot$$' ./appliance/store/
	$(FUZZ) '^FuzzBackupFile$$' ./appliance/store/
	$(FUZZ) '^FuzzBootConfig$$' ./appliance/boot/

bench: deps
	$(GO) test ./bench/ -run '^$$' -bench 'Validate|CueVet' -benchtime 3x
	$(GO) test ./bench/ -run '^$$' -bench 'CommitToRunning' -benchtime 20x -timeout 30m

clean:
	rm -rf out
