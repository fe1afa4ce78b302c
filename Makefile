# Shoal's build entry points. `make demo` and `make test` are the two commands a new user needs.
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     := bin/shoal
PKGS    := ./...
FUZZTIME ?= 15s

.PHONY: build test fuzz bench demo demo-down clean

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/shoal

# The whole suite: unit tests, end-to-end tests (real containerd, git, memberlist, DNS; needs root),
# and a short run of every fuzz target.
test: build
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 15m $(PKGS)
	$(MAKE) --no-print-directory fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./spec

# A local cluster deploying examples/ from a local Git repository (needs root).
demo:
	examples/demo/demo.sh up

demo-down:
	examples/demo/demo.sh down

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 $(PKGS)

clean:
	rm -rf bin
