# The user-facing commands. Each target is a thin wrapper over a script in hack/ or cargo,
# so what CI runs is what a person runs.
SHELL := bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

.PHONY: demo
demo: ## Control plane + vyos-sim + the operator, examples applied (Ctrl-C stops everything)
	hack/demo.sh

.PHONY: test
test: ## Build what the tests need, start the control plane, run every check and test, stop it
	hack/test.sh

.PHONY: control-plane
control-plane: ## Build etcd, kube-apiserver, kube-controller-manager, kubectl, helm (cached)
	hack/control-plane.sh build

.PHONY: up
up: control-plane ## Start the local control plane (prints the kubeconfig path)
	hack/control-plane.sh up

.PHONY: down
down: ## Stop the local control plane
	hack/control-plane.sh down

.PHONY: crds
crds: ## Regenerate crds/, the chart's CRDs and docs/api-reference.md from the Rust types
	$(CARGO) run -q -- crd --out-dir crds
	$(CARGO) run -q -- crd --format markdown --out-dir docs
	$(CARGO) run -q -- crd --format helm --out-dir charts/vmnet-operator/templates/crds

.PHONY: chart-docs
chart-docs: ## Regenerate the values reference in charts/vmnet-operator/README.md
	python3 hack/chart-docs.py

.PHONY: manifests
manifests: ## Render deploy/vmnet-operator.yaml from the Helm chart (default values)
	hack/manifests.sh

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: lint
lint: ## rustfmt check and clippy with warnings denied
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: bench
bench: ## Run every benchmark (see README, "Benchmarking")
	$(CARGO) bench --workspace
