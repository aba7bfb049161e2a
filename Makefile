# berth: one static binary. `make demo` runs the main job, `make test` the
# whole suite; both run the idempotent set-up step first.
SHELL   := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all deps build install image demo demo-shop demo-stop test lint unit fuzz bench clean

PREFIX ?= /usr/local

all: build

deps:
	@./test/setup.sh

# CGO_ENABLED=0: the binary must run from the appliance's initramfs.
build: deps
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o out/berth ./cmd/berth

# berth on PATH, so the README's commands work as written.
install: build
	install -D -m 0755 out/berth $(DESTDIR)$(PREFIX)/bin/berth

# The master's bootable image: out/vmlinuz + out/initramfs.img (PXE, qemu
# -kernel/-initrd) and out/berth-appliance.iso (BIOS and UEFI). Timestamps
# come from the last commit, so a clean tree rebuilds to the same bytes.
image: build
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
		$(GO) run ./images/appliance/mkimage -berth out/berth -out out -cache out/cache/debs

# The main job: validate the examples, then run the hello example on this
# machine with berth up and show its pods (see test/demo.sh).
demo: install
	out/berth validate examples/hello
	out/berth validate examples/cue-app
	out/berth validate examples/shop
	./test/demo.sh

# Once the demo runs: the shop example (web, API, Redis) on the same
# cluster, through its front end (see "The shop example" in README.md).
demo-shop: build
	./test/demo.sh shop

demo-stop:
	out/berth down --data $(CURDIR)/out/demo
	-kill $$(cat out/demo/registry/pid 2>/dev/null) 2>/dev/null

test: deps lint unit fuzz

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [[ -n "$$unformatted" ]]; then echo "not gofmt-clean:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@# Each fuzz target is run by `fuzz` in its own package: go test -fuzz
	@# on a package without it passes without fuzzing anything.
	@missing=0; for f in $$(grep -l '^func Fuzz' $$(git ls-files '*_test.go')); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			grep -qF -- "-fuzz '^$$t\$$\$$' ./$$(dirname $$f)/" Makefile || { echo "$$t ($$f) is not run by make fuzz in ./$$(dirname $$f)/"; missing=1; }; \
		done; \
	done; exit $$missing

# The appliance boot test (test/e2e) builds the image and boots it three
# times under qemu software emulation, hence the time-out above the default.
unit:
	$(GO) test -count=1 -timeout 40m ./...

# Each fuzz target briefly, on top of its seed corpus (which `unit` runs):
# a number of inputs, about 10 s of this machine's fuzzing each. A count,
# not -fuzztime 10s: Go 1.26's fuzz coordinator can fail a timed run with
# "context deadline exceeded" when a loaded machine's worker misses the
# deadline (golang/go#75804, fixed in Go 1.27). Minimizing new inputs would
# take most of so short a run: skip it.
FUZZ = $(GO) test -run '^$$' -fuzzminimizetime 1x -fuzztime
fuzz:
	$(FUZZ) 4000x -fuzz '^FuzzLoadYAML$$' ./schemas/
	$(FUZZ) 24000x -fuzz '^FuzzLoadJSON$$' ./schemas/
	$(FUZZ) 22000x -fuzz '^FuzzLoadCUE$$' ./schemas/
	$(FUZZ) 32000x -fuzz '^FuzzCheckerAgreesWithCUE$$' ./schemas/
	$(FUZZ) 47000x -fuzz '^FuzzAppendJSONString$$' ./schemas/
	$(FUZZ) 1700x -fuzz '^FuzzKustomize$$' ./schemas/
	$(FUZZ) 3300x -fuzz '^FuzzExtract$$' ./gitops/
	$(FUZZ) 15000x -fuzz '^FuzzFSMApply$$' ./appliance/store/
	$(FUZZ) 26000x -fuzz '^FuzzRequests$$' ./appliance/apiserver/
	$(FUZZ) 460000x -fuzz '^FuzzNames$$' ./schemas/names/
	$(FUZZ) 51000x -fuzz '^FuzzJoinRequest$$' ./appliance/apiserver/
	$(FUZZ) 42000x -fuzz '^FuzzWebhookSignature$$' ./appliance/apiserver/
	$(FUZZ) 90000x -fuzz '^FuzzLoadCA$$' ./appliance/pki/
	$(FUZZ) 210000x -fuzz '^FuzzPinnedFingerprint$$' ./appliance/pki/
	$(FUZZ) 500000x -fuzz '^FuzzVerify$$' ./appliance/auth/
	$(FUZZ) 20000x -fuzz '^FuzzReadSnapshot$$' ./appliance/store/
	$(FUZZ) 50000x -fuzz '^FuzzExecOptions$$' ./appliance/api/
	$(FUZZ) 6300x -fuzz '^FuzzBackupFile$$' ./appliance/store/
	$(FUZZ) 14000x -fuzz '^FuzzBootConfig$$' ./appliance/boot/
	$(FUZZ) 80000x -fuzz '^FuzzServeDNS$$' ./nodes/dns/

bench: deps
	$(GO) test ./bench/ -run '^$$' -bench 'Validate|CueVet' -benchtime 3x
	$(GO) test ./bench/ -run '^$$' -bench 'CommitToRunning' -benchtime 20x -timeout 30m

clean:
	rm -rf out
