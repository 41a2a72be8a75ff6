# Local Kubernetes control plane for the e2e tests and the demo (e2e/README.md).
# Included by the root Makefile, which defines GO; usable alone with
# `make -f e2e/e2e.mk <target>` from the repository root.

GO ?= GOTOOLCHAIN=auto go
CACHE_BIN ?= $(HOME)/.cache/platzwart/bin
LOCALCLUSTER := $(GO) run ./e2e/cmd/localcluster

.PHONY: cluster-up cluster-down cluster-status helm

## cluster-up: start a local control plane in the background (builds it on first use) and print its KUBECONFIG
cluster-up:
	@$(LOCALCLUSTER) up

## cluster-down: stop the local control plane and the leftovers of crashed test runs
cluster-down:
	@$(LOCALCLUSTER) down

## cluster-status: list the local control planes
cluster-status:
	@$(LOCALCLUSTER) status

## helm: build the helm CLI (the version the product module requires) into $(CACHE_BIN)
helm: $(CACHE_BIN)/helm

$(CACHE_BIN)/helm: go.mod go.sum
	@mkdir -p $(CACHE_BIN)
	$(GO) build -ldflags "-X helm.sh/helm/v3/internal/version.version=$$($(GO) list -m -f '{{.Version}}' helm.sh/helm/v3)" \
	  -o $@ helm.sh/helm/v3/cmd/helm
