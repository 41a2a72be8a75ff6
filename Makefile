# platzwart — everything a fresh machine needs goes through these targets.
# Two commands matter: `make demo` and `make test` (see README.md).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The design card's packages need Go 1.27; these machines ship Go 1.26 with
# GOTOOLCHAIN=local. go.mod names the toolchain and every go call here may fetch it
# from the module proxy.
export GOTOOLCHAIN := auto
GO := GOTOOLCHAIN=auto go

CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/platzwart
CACHE_BIN ?= $(CACHE_DIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PLATZWART := $(CACHE_BIN)/platzwart

STATICCHECK_VERSION := v0.8.2
CONTROLLER_GEN_VERSION := v0.23.0
FUZZTIME ?= 15s
TEST_TIMEOUT ?= 60m

include e2e/e2e.mk

.PHONY: all build test test-deps unit lint fmt vet staticcheck helm-lint fuzz bench demo demo-down generate help

all: build

## help: list the targets
help:
	@grep -hE '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## build: build the platzwart binary into $(CACHE_BIN)
build:
	@mkdir -p $(CACHE_BIN)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(PLATZWART) ./cmd/platzwart

## test: everything CI runs: lint, helm lint of every chart, unit and e2e tests, fuzzing
test: lint helm-lint test-deps unit fuzz

## test-deps: Debian's PostgreSQL server binaries for the provisioning-script tests (installed when missing)
test-deps:
	@./hack/ensure-postgresql.sh

## unit: go test ./... (e2e packages start a local control plane, built on first use)
unit:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## lint: gofmt, go vet and staticcheck
lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## helm-lint: helm lint --strict every chart (helm CLI built from the Helm SDK version in go.mod)
helm-lint: $(CACHE_BIN)/helm
	@for c in charts/*/; do \
	  args=""; for f in $$c/ci/*-values.yaml; do [ -e "$$f" ] && args="$$args --values $$f" && break; done; \
	  echo "helm lint --strict $$c $$args"; $(CACHE_BIN)/helm lint --strict $$c $$args >/tmp/helm-lint.$$$$ 2>&1 || { cat /tmp/helm-lint.$$$$; exit 1; }; \
	done

## fuzz: run every fuzz target for $(FUZZTIME)
fuzz:
	@for t in $$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' reconciler | sed 's/func //'); do \
	  pkg=$$(grep -rlE "^func $$t\(" --include='*_test.go' reconciler | xargs dirname); \
	  echo "fuzz $$t in ./$$pkg for $(FUZZTIME)"; \
	  $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) ./$$pkg; \
	done

## bench: benchmarks (performance targets are checked here, never in timed tests; docs/benchmarks.md)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./reconciler/plan/
	$(GO) test -run='^$$' -bench='PreflightRender|RenderParts' -benchmem ./reconciler/render/
	$(GO) test -run='^$$' -bench=NoOpReconcile -benchtime=20x ./reconciler/
	$(GO) test -run='^$$' -bench=FirstInstall -benchtime=1x ./reconciler/
	$(GO) test -run='^$$' -bench=BuildValidated -benchtime=60x -benchmem ./reconciler/release/
	$(GO) test -run='^$$' -bench='BenchmarkController/workplaces=10$$' -benchtime=1x -timeout=30m ./e2e/scale/

WORKPLACES ?= 100
SCALE_TIMEOUT ?= 180m

.PHONY: bench-scale
## bench-scale: a running controller process at WORKPLACES=10|100|1000 workplaces (CONCURRENCY=n for --concurrency): install, no-op cycle, drift, converge, RSS, CPU, profiles (docs/benchmarks.md)
bench-scale:
	$(if $(CONCURRENCY),PLATZWART_BENCH_CONCURRENCY=$(CONCURRENCY)) $(GO) test -run='^$$' -bench='BenchmarkController/workplaces=$(WORKPLACES)$$' -benchtime=1x -timeout=$(SCALE_TIMEOUT) ./e2e/scale/

## generate: regenerate deepcopy code and the CRD manifest
generate:
	$(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION) \
	  object:headerFile=hack/boilerplate.go.txt crd paths=./api/... output:crd:dir=config/crd
	cp config/crd/platzwart.io_workplaces.yaml charts/platzwart/crds/

IMAGE_DIR ?= $(CACHE_DIR)/image
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64

.PHONY: image
## image: the platzwart OCI image without a container engine (build/ociimage): OCI and docker archives + CycloneDX SBOM in $(IMAGE_DIR); PUSH=REF also pushes
image:
	$(GO) run ./build/cmd/platzwart-image -out $(IMAGE_DIR) -version $(VERSION) -platform $(IMAGE_PLATFORMS) $(if $(PUSH),-push $(PUSH))

## demo: the GitOps loop on the example: Git server on loopback, controller, status (local control plane unless KUBECONFIG is set)
demo: build
	@PLATZWART=$(PLATZWART) CACHE_DIR=$(CACHE_DIR) ./hack/demo.sh

## demo-down: stop the demo's controller, Git server and local control plane
demo-down:
	-@for p in controller gitserve; do f=$(CACHE_DIR)/demo/$$p.pid; [ -f $$f ] && kill $$(cat $$f) 2>/dev/null; rm -f $$f; done
	@$(MAKE) --no-print-directory cluster-down
