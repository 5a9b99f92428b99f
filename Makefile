# recphone — the two commands are `make run` and `make test`.
GO ?= go
BIN := bin
export PATH := $(PATH):/usr/local/go/bin
export LANG := en_US.UTF-8
# Every build and test leaves out Fyne's bundled colour emoji font: the
# window shows no emoji, and Fyne parsed the 4 MB font once per text
# style, 15 MB of the app's heap at rest (docs/benchmarks.md). The few
# symbols the window draws (● ○ ◀ ✕) come from the system's fonts.
export GOFLAGS += -tags=no_emoji

.PHONY: run test build deps deps-run vet fuzz bench bench-call bench-idle bench-app-call clean package package-files deb rpm archive

# With no RUN_ARGS the desktop app starts its loopback demo; pass a
# configuration with RUN_ARGS="--config my.toml".
run: deps-run
	$(GO) build -o $(BIN)/recphone ./cmd/recphone
	$(BIN)/recphone $(RUN_ARGS)

# What --version prints: the version of FyneApp.toml and the commit.
VERSION ?= $(shell sed -n 's/^ *Version = "\(.*\)"/\1/p' FyneApp.toml)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -X github.com/recphone/recphone/cmd/internal/version.Version=$(VERSION) -X github.com/recphone/recphone/cmd/internal/version.Commit=$(COMMIT)

build:
	$(GO) build -ldflags="$(LDFLAGS)" -o $(BIN)/ ./cmd/...

deps:
	.ci/install-deps

deps-run:
	.ci/install-deps --run-only

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# gofmt over every Go file in the tree that git does not ignore, so a new,
# not yet added file is checked too.
vet:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')) && test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run 'go mod tidy'"; exit 1; }
	.ci/check-layers
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

test: deps vet
	.ci/test-env $(GO) test -race -timeout 20m -count=1 ./...

# Short fuzzing pass over every fuzz target (FUZZTIME each).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Under the test rig, so the sound-path benchmarks have their devices.
bench: deps
	.ci/test-env $(GO) test -run '^$$' -bench . -benchmem ./...

# What a call costs: a recorded recphone call, a plain recphone call and a
# plain baresip call, all at once for BENCH_DURATION; prints CPU, CPU per
# call-second, peak RSS and the ratios against baresip (docs/benchmarks.md).
BENCH_DURATION ?= 20s
bench-call: deps
	$(GO) build -o $(BIN)/ ./cmd/recphone-cli ./cmd/recphone-srs ./cmd/internal/benchcall
	.ci/test-env $(BIN)/benchcall -cli $(BIN)/recphone-cli -srs $(BIN)/recphone-srs -duration $(BENCH_DURATION) $(BENCH_ARGS)

# The desktop app in a recorded call next to recphone-cli in the same call
# (CPU ratio, RSS over the call); APP_CALL_DURATION=10m for the long run.
APP_CALL_DURATION ?= 60s
bench-app-call: deps
	$(GO) build -o $(BIN)/ ./cmd/recphone ./cmd/recphone-cli ./cmd/recphone-srs ./cmd/internal/benchcall
	LIBGL_ALWAYS_SOFTWARE=1 .ci/test-env $(BIN)/benchcall -app-call $(APP_CALL_DURATION) -app $(BIN)/recphone -cli $(BIN)/recphone-cli -srs $(BIN)/recphone-srs $(BENCH_ARGS)

# The desktop app at rest next to Debian's linphone-desktop (installed for
# the comparison), both under the rig's display with software GL.
IDLE_DURATION ?= 60s
bench-idle: deps
	command -v linphone >/dev/null || apt-get install -y linphone-desktop dbus
	$(GO) build -o $(BIN)/ ./cmd/recphone ./cmd/internal/benchcall
	LIBGL_ALWAYS_SOFTWARE=1 .ci/test-env $(BIN)/benchcall -idle $(IDLE_DURATION) -app $(BIN)/recphone $(BENCH_ARGS)

# make package: the Debian package (make deb), the RPM package (make rpm)
# and the archive for other distributions (make archive).
package: deb rpm archive

# The .deb and the .rpm, made by nfpm from packaging/nfpm.yaml: both
# programs in /usr/bin, the .desktop file and icon, an autostart entry for
# admins to enable, /etc/recphone/policy.toml as a conffile, the docs in
# /usr/share/doc/recphone, and Depends (Requires) on the libraries the
# binaries link. nfpm is installed into $(BIN)/tools at the pinned
# version; go.mod is not touched. One nfpm.yaml makes both: nfpm writes
# rpm natively, no rpmbuild needed.
NFPM_TOOL ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
package-files: deps-run
	GOBIN=$(abspath $(BIN))/tools $(GO) install $(NFPM_TOOL)
	$(GO) build -ldflags="-s -w $(LDFLAGS)" -o $(BIN)/recphone ./cmd/recphone
	$(GO) build -ldflags="-s -w $(LDFLAGS)" -o $(BIN)/recphone-cli ./cmd/recphone-cli
	sed 's#$${BIN}#$(abspath $(BIN))#g' packaging/nfpm.yaml > $(BIN)/nfpm.yaml

deb: package-files
	VERSION=$(VERSION) $(abspath $(BIN))/tools/nfpm package --config $(BIN)/nfpm.yaml --packager deb --target $(BIN)/recphone_$(VERSION)_amd64.deb
	@echo "$(BIN)/recphone_$(VERSION)_amd64.deb: sudo apt-get install ./$(BIN)/recphone_$(VERSION)_amd64.deb"

rpm: package-files
	VERSION=$(VERSION) $(abspath $(BIN))/tools/nfpm package --config $(BIN)/nfpm.yaml --packager rpm --target $(BIN)/recphone-$(VERSION)-1.x86_64.rpm
	@echo "$(BIN)/recphone-$(VERSION)-1.x86_64.rpm: sudo dnf install ./$(BIN)/recphone-$(VERSION)-1.x86_64.rpm"

# An installable Linux archive (binary, .desktop file, icon) made by
# `fyne package` from FyneApp.toml. The fyne tool is installed into
# $(BIN)/tools; go.mod is not touched. fyne package insists on Go code in
# the folder it packages even when given --exe, hence the stub in a
# temporary folder outside the module.
FYNE_TOOL ?= fyne.io/tools/cmd/fyne@v1.7.4
archive: deps-run
	GOBIN=$(CURDIR)/$(BIN)/tools $(GO) install $(FYNE_TOOL)
	$(GO) build -ldflags="-s -w $(LDFLAGS)" -o $(BIN)/recphone ./cmd/recphone
	@stage=$$(mktemp -d) && trap 'rm -rf "$$stage"' EXIT && \
	  mkdir -p "$$stage/assets" && cp FyneApp.toml "$$stage/" && cp assets/icon.png "$$stage/assets/" && \
	  printf 'package main\n\nfunc main() {}\n' > "$$stage/main.go" && \
	  (cd "$$stage" && $(CURDIR)/$(BIN)/tools/fyne package --os linux --exe $(CURDIR)/$(BIN)/recphone --release) && \
	  mv "$$stage/recphone.tar.xz" $(BIN)/
	@echo "$(BIN)/recphone.tar.xz: unpack it, then 'make -C recphone user-install' (or 'sudo make -C recphone install')"

clean:
	rm -rf $(BIN)
