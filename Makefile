# recphone — the two commands are `make run` and `make test`.
GO ?= go
BIN := bin
export PATH := $(PATH):/usr/local/go/bin
export LANG := en_US.UTF-8

.PHONY: run test build deps deps-run vet fuzz bench clean

run: deps-run build
	$(BIN)/recphone-cli $(RUN_ARGS)

build:
	$(GO) build -o $(BIN)/ ./cmd/...

deps:
	.ci/install-deps

deps-run:
	.ci/install-deps --run-only

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
