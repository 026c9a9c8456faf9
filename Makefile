# carrel — see `make help`.
SHELL := /bin/sh
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BUILD := build
# cgo is required: bookings, audit and the traffic index use SQLite through mattn/go-sqlite3.
export CGO_ENABLED := 1
# Tests that need root, network namespaces or Debian tools run when this is set;
# without it (a plain `go test` by a developer) they skip and say why.
export CARREL_TEST_PRIVILEGED := 1
# Fuzz time per target for `make fuzz`.
FUZZTIME ?= 30s

.PHONY: help deps build run test test-long lint fuzz bench bench-capture bench-export e2e windows clean deb msi packages

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## install missing Debian packages the build and tests need (as root)
	@./.ci/deps

build: ## build ./build/carrel
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BUILD)/carrel ./cmd/carrel

run: build ## run carrel in the foreground on a demo config in a temporary folder (bookings only, no root needed)
	@dir=$$(mktemp -d /tmp/carrel-demo.XXXXXX); \
	$(BUILD)/carrel config init --data-dir $$dir | sed 's/^client_group = .*/client_group = ""   # the demo serves only its own account/' > $$dir/carrel.toml && \
	echo "demo config: $$dir/carrel.toml — try: $(BUILD)/carrel booking start --config $$dir/carrel.toml --ref demo-1" && \
	exec $(BUILD)/carrel run --config $$dir/carrel.toml

test: deps lint windows packages ## install what is missing, then vet, lint, cross-compile, build the packages and run every test
	$(GO) test -count=1 -timeout 30m ./...

e2e: deps ## only the end-to-end tests: the real binary in network namespaces, SIGKILL, golden run (root)
	$(GO) test -count=1 -run 'TestG1|TestG2|TestQuota|TestKill|TestBookingClientGroup|TestGoldenRun|TestScripts|TestWitness' ./cmd/carrel

test-long: deps ## the longer sweeps: every bit flip, more kill iterations
	CARREL_TEST_LONG=1 $(GO) test -count=1 -timeout 90m ./...

# staticcheck is pinned (2026.2.2 is module version v0.8.2) and installed
# with go install into a folder named by its version, so the build does not
# depend on whatever staticcheck is on PATH, and a new pin installs anew
# while an unchanged one is not rebuilt. Bump the version here.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(abspath $(BUILD))/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck
$(STATICCHECK):
	GOBIN=$(@D) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck (Linux and Windows; checks in staticcheck.conf)
	@out=$$(gofmt -l . 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=windows CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc $(GO) vet ./...
	$(STATICCHECK) ./...
	GOOS=windows CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc $(STATICCHECK) ./...

# Packages. Their versions derive from VERSION (installer/pack/version.go);
# COMMITS orders builds made before the first tag.
COMMITS ?= $(shell git rev-list --count HEAD 2>/dev/null || echo 0)
COMMIT_TIME ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
DEB_MAINTAINER ?= carrel developers <carrel@carrel-lib.invalid>
PKGFLAGS = --version '$(VERSION)' --commits $(COMMITS) --out $(BUILD)

packages: deb msi ## build the .deb and the MSI into build/ (their tests run in make test)

deb: ## build build/carrel_VERSION_amd64.deb: hardened binary, systemd unit, conffile, maintainer scripts
	rm -f $(BUILD)/carrel_*.deb
	$(GO) run ./installer/mkpkg deb $(PKGFLAGS) --date $(COMMIT_TIME) --maintainer '$(DEB_MAINTAINER)'

msi: windows ## build build/carrel.msi (around build/carrel.exe) with wixl; with SIGN_CERT=cert.pem SIGN_KEY=key.pem [SIGN_TIMESTAMP=url] also sign it
	$(GO) run ./installer/mkpkg msi $(PKGFLAGS) --exe $(BUILD)/carrel.exe $(if $(SIGN_CERT),--sign-cert '$(SIGN_CERT)' --sign-key '$(SIGN_KEY)') $(if $(SIGN_TIMESTAMP),--sign-timestamp '$(SIGN_TIMESTAMP)')

windows: ## cross-compile build/carrel.exe for windows/amd64 (cgo with mingw), with its version resource
	$(GO) run ./installer/mkpkg winres --version '$(VERSION)' --commits $(COMMITS) --out $(abspath $(BUILD))/carrel-res.o
	GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc $(GO) build -trimpath -ldflags '$(LDFLAGS) -extldflags=$(abspath $(BUILD))/carrel-res.o' -o $(BUILD)/carrel.exe ./cmd/carrel

fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg || exit 1; \
		done; \
	done

bench: deps build bench-capture bench-export ## benchmarks side by side with the peer tools; see BENCHMARKS.md
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

bench-export: ## court-order export of one year (350k bookings, 1 GiB sealed traffic) and its verify (~10 min; data cached in ~/.cache/carrel-bench)
	CARREL_BENCH_EXPORT=1 $(GO) test -run '^$$' -bench 'ExportYear|VerifyYear|BookingsYear' -benchtime 1x -count 5 -benchmem -timeout 60m ./internal/export/

bench-capture: deps ## live capture vs tcpdump and tshark in network namespaces, offline decode vs tshark (root, ~15 min)
	GO=$(GO) ./bench/capture/run.sh

clean: ## remove build output
	rm -rf $(BUILD)
