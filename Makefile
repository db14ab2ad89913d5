# Kisee and Pasee. The two commands a newcomer needs: `make run`, `make test`.

GO       ?= go
# Calver YY.MM.MICRO: the tag on HEAD for a release, else this month's dev version.
VERSION  ?= $(shell git describe --tags --exact-match 2>/dev/null || echo $$(date -u +%y.%m).0-dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin
RUN_DIR  := .run

.PHONY: all run build test lint vet fmt-check tidy-check unit bench fuzz release clean

all: build

## build: compile kisee and pasee into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/kisee ./cmd/pasee

## run: start Kisee and Pasee on embedded defaults (SQLite, generated keys) in .run/
##      kisee-root (Kisee's demo root) is made staff of Pasee. Ctrl-C stops both.
run: build
	@mkdir -p $(RUN_DIR)
	@cd $(RUN_DIR) && ../$(BIN)/pasee append --groups staff kisee-root >/dev/null
	@# KISEE_SERVER_PORT, PASEE_PORT (and the hosts) move the services; Pasee follows Kisee.
	@kh=$${KISEE_SERVER_HOST:-127.0.0.1}; kp=$${KISEE_SERVER_PORT:-8140}; ph=$${PASEE_HOST:-127.0.0.1}; pp=$${PASEE_PORT:-8150}; \
	  echo "Kisee: http://$$kh:$$kp   Pasee: http://$$ph:$$pp   (state in $(RUN_DIR)/; Ctrl-C stops both)"; \
	  cd $(RUN_DIR) && { ../$(BIN)/kisee & k=$$!; \
	  PASEE_IDENTITY_PROVIDERS_0_ENDPOINT=$${PASEE_IDENTITY_PROVIDERS_0_ENDPOINT:-http://127.0.0.1:$$kp/} ../$(BIN)/pasee & p=$$!; \
	  trap 'kill $$k $$p 2>/dev/null; wait $$k $$p; exit 0' INT TERM; wait $$k $$p; }

# The repository holds two modules: the product (./, what the binaries and pkg/ need) and
# tests/ (benchmarks, browser, deploy and real-client tests, whose dependencies must not reach
# the product's go.mod). Every check below runs on both.
MODULES := . tests

## test: what CI runs — formatting, tidy go.mod, vet, staticcheck, then every test with the race detector
test: fmt-check tidy-check vet lint unit

fmt-check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

## tidy-check: go.mod and go.sum of each module are exactly what `go mod tidy` would write
tidy-check:
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff) || { echo "go.mod of $$m is not tidy: run go mod tidy there"; exit 1; }; done

vet:
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

## lint: staticcheck (pinned in each go.mod as a tool)
lint:
	@for m in $(MODULES); do (cd $$m && $(GO) tool staticcheck ./...) || exit 1; done

# Tests that need something of the machine (PostgreSQL, Redis, slapd, Chromium, nginx...) skip
# without it through internal/testenv, which records each skipped suite in $TEST_SKIP_LOG; `go
# test` alone would not show a skip. unit ends with one line naming them, or saying none was.
# Under CI=true (.ci/run) they fail instead.
unit:
	@log=$$(mktemp); trap 'rm -f $$log' EXIT; rc=0; \
	echo "$(GO) test -race -timeout 20m ./..."; \
	TEST_SKIP_LOG=$$log $(GO) test -race -timeout 20m ./... || rc=$$?; \
	echo "cd tests && $(GO) test -race -timeout 20m ./..."; \
	(cd tests && TEST_SKIP_LOG=$$log $(GO) test -race -timeout 20m ./...) || rc=$$?; \
	if [ -s $$log ]; then \
	  echo "SKIPPED: $$(awk -F '\t' '!seen[$$1]++ {printf "%s%s (%s)", (n++ ? "; " : ""), $$1, $$2}' $$log) -- install what is named, or run with CI=true to make these fail"; \
	else echo "Skipped suites: none, every test ran."; fi; \
	exit $$rc

## bench: the micro-benchmarks (token sign/verify, password hashing), then bench/ against the
##        built binaries on loopback (SQLite and PostgreSQL on 127.0.0.1:5432): every figure as a
##        ratio to a bound measured in the same run, written with the plots into docs/benchmarks.md.
##        5 to 8 minutes on 2 cores (levels disturbed by other processes are measured again);
##        BENCH_FLAGS=-quick for about one (no group scale, no profiles), -skip-groups, -pg off,
##        '-dex PATH' to measure a Dex binary's refresh beside Pasee's, -pasee-gomaxprocs N...
BENCH_FLAGS ?=
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1s ./pkg/token/ ./internal/password/
	cd tests && $(GO) run ./bench -bin ../$(BIN) -out ../docs/benchmarks.md -plots ../docs/benchmarks $(BENCH_FLAGS)

## fuzz: run each fuzz target for FUZZTIME (default 30s), one after the other. Their seed corpora
##       (f.Add and testdata/fuzz/) run in `make test`; a crasher found here lands in testdata/fuzz/.
##       Go 1.26's fuzz coordinator can end a run with "context deadline exceeded" at the deadline
##       without any failing input (go.dev/issue/75804): that alone is reported, not failed.
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	./pkg/token:FuzzVerify ./pkg/token:FuzzVerifySigned ./pkg/token:FuzzClaimsJSON ./pkg/token:FuzzClaimsUnmarshalJSON ./pkg/token:FuzzParseJWKS \
	./internal/settings:FuzzSettings \
	./internal/pasee:FuzzValidateGroupName ./internal/pasee:FuzzValidateSubject \
	./internal/kisee/api:FuzzKiseeBodies ./internal/kisee/api:FuzzKiseePasswordPatch \
	./internal/pasee/api:FuzzPaseeBodies ./internal/pasee/api:FuzzPaseePaths
fuzz:
	@set -e; out=$$(mktemp); trap 'rm -f $$out' EXIT; \
	for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; corpus=$$pkg/testdata/fuzz/$$name; \
	  before=$$(ls $$corpus 2>/dev/null | wc -l); rc=0; \
	  echo "== $$name ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" >$$out 2>&1 || rc=$$?; \
	  grep -v '^fuzz: elapsed' $$out || true; grep '^fuzz: elapsed' $$out | tail -1; \
	  if [ $$rc -ne 0 ]; then \
	    if [ "$$(ls $$corpus 2>/dev/null | wc -l)" = "$$before" ] && grep -q 'context deadline exceeded' $$out; then \
	      echo "   (no failing input: the Go fuzz coordinator's deadline race, go.dev/issue/75804)"; \
	    else exit $$rc; fi; \
	  fi; \
	done

## release: static linux/amd64 and linux/arm64 binaries with checksums in dist/
release:
	@rm -rf dist && mkdir -p dist
	@for arch in amd64 arm64; do \
	  for cmd in kisee pasee; do \
	    echo "dist/$$cmd-$(VERSION)-linux-$$arch"; \
	    CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
	      -o dist/$$cmd-$(VERSION)-linux-$$arch ./cmd/$$cmd || exit 1; \
	  done; \
	done
	cd dist && sha256sum * > SHA256SUMS

clean:
	rm -rf $(BIN) $(RUN_DIR) dist
