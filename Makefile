# Shoal's build entry points. `make demo` and `make test` are the two commands a new user needs.
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     := bin/shoal
PKGS    := ./...
FUZZTIME ?= 15s

.PHONY: build test fuzz bench bench-system demo demo-down clean

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
	$(GO) test -run '^$$' -fuzz '^FuzzPreScan$$' -fuzztime $(FUZZTIME) ./spec
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./gossip
	$(GO) test -run '^$$' -fuzz '^FuzzServeDNS$$' -fuzztime $(FUZZTIME) ./dns
	$(GO) test -run '^$$' -fuzz '^FuzzCache$$' -fuzztime $(FUZZTIME) ./dns
	$(GO) test -run '^$$' -fuzz '^FuzzProxyIndex$$' -fuzztime $(FUZZTIME) ./network
	$(GO) test -run '^$$' -fuzz '^FuzzAcceptPeers$$' -fuzztime $(FUZZTIME) ./network

# A local cluster deploying examples/ from a local Git repository (needs root).
demo:
	examples/demo/demo.sh up

demo-down:
	examples/demo/demo.sh down

# Package benchmarks (see BENCHMARKS.md for each one's command and figures).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 5 ./spec ./planner ./dns
	$(GO) test -run '^$$' -bench . -benchtime 300x -count 5 ./source

# Whole-system benchmarks: real containerd, Git and network namespaces (needs root).
bench-system:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 5x -count 3 ./e2e
	$(GO) test -run '^$$' -bench ProxyEndpointChange -benchtime 300x -count 3 ./network
	$(GO) test -run '^$$' -bench ProxyRequests -benchtime 10x -count 3 ./network

clean:
	rm -rf bin
