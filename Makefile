# recphone — the two commands are `make run` and `make test`.
GO ?= go
BIN := bin
export PATH := $(PATH):/usr/local/go/bin
export LANG := en_US.UTF-8

.PHONY: run test build deps deps-run vet fuzz bench clean package

# With no RUN_ARGS the desktop app starts its loopback demo; pass a
# configuration with RUN_ARGS="--config my.toml".
run: deps-run
	$(GO) build -o $(BIN)/recphone ./cmd/recphone
	$(BIN)/recphone $(RUN_ARGS)

build:
	$(GO) build -o $(BIN)/ ./cmd/...

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

# An installable Linux archive (binary, .desktop file, icon) made by
# `fyne package` from FyneApp.toml. The fyne tool is installed into
# $(BIN)/tools; go.mod is not touched. fyne package insists on Go code in
# the folder it packages even when given --exe, hence the stub in a
# temporary folder outside the module.
FYNE_TOOL ?= fyne.io/tools/cmd/fyne@v1.7.4
package: deps-run
	GOBIN=$(CURDIR)/$(BIN)/tools $(GO) install $(FYNE_TOOL)
	$(GO) build -ldflags="-s -w" -o $(BIN)/recphone ./cmd/recphone
	@stage=$$(mktemp -d) && trap 'rm -rf "$$stage"' EXIT && \
	  mkdir -p "$$stage/assets" && cp FyneApp.toml "$$stage/" && cp assets/icon.png "$$stage/assets/" && \
	  printf 'package main\n\nfunc main() {}\n' > "$$stage/main.go" && \
	  (cd "$$stage" && $(CURDIR)/$(BIN)/tools/fyne package --os linux --exe $(CURDIR)/$(BIN)/recphone --release) && \
	  mv "$$stage/recphone.tar.xz" $(BIN)/
	@echo "$(BIN)/recphone.tar.xz: unpack it, then 'make -C recphone user-install' (or 'sudo make -C recphone install')"

clean:
	rm -rf $(BIN)
