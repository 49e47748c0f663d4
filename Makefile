# Airlock — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Every tool runs on the pinned Node 24 from node_modules, never the machine's node.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
STAMP := node_modules/.install-stamp

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The sidecar's native addon (gives memory back when quiet), built against the pinned Node's
# headers; without gcc build.sh says so and the sidecar runs without it.
NATIVE := sidecar/native/build/memory.node
$(NATIVE): sidecar/native/memory.c sidecar/native/build.sh $(STAMP)
	@sidecar/native/build.sh

.PHONY: install
install: $(STAMP) $(NATIVE) ## Install the pinned toolchain (Node 24) and dependencies, build the addon

.PHONY: demo
demo: $(STAMP) $(NATIVE) ## Tour the three outcomes (inject, allow, block) against local upstreams
	@bin/airlock demo

.PHONY: test
test: $(STAMP) $(NATIVE) ## Run every test (some need root; see docs/testing.md)
	@test/run-tests.sh

.PHONY: cluster
cluster: $(STAMP) ## Start etcd + kube-apiserver in the background (writes .cluster/kubeconfig)
	@node test/k8s/cluster.ts start

.PHONY: cluster-down
cluster-down: $(STAMP) ## Stop the control plane `make cluster` started (by its recorded PIDs)
	@node test/k8s/cluster.ts stop

.PHONY: bench
bench: $(STAMP) $(NATIVE) ## Benchmarks (results in docs/benchmarks.md); starts its own control plane
	@node test/bench/convergence.ts
	@node test/bench/hollow.ts
	@node test/bench/tunnels.ts
	@node test/bench/policy.ts
	@node test/bench/proxy.ts $(BENCH_PROXY_FLAGS)

.PHONY: fuzz
fuzz: $(STAMP) ## Property tests only (*.property.test.ts) at 1,000,000 cases each (AIRLOCK_PROPERTY_SEED to replay)
	AIRLOCK_PROPERTY_RUNS=1000000 node_modules/.bin/mocha --no-config --extension ts --timeout 0 \
		'sidecar/**/*.property.test.ts' 'test/**/*.property.test.ts'

.PHONY: image
image: ## Build the image with podman (localhost/airlock:VERSION), smoke-test it, save it for the e2e (docs/image.md)
	@image/build.sh

.PHONY: e2e
e2e: $(STAMP) ## End-to-end on a real Kubernetes node built here (root; docs/testing.md)
	@test/e2e/run.sh

.PHONY: lint
lint: $(STAMP) ## Type-check, ESLint and Prettier (zero warnings)
	node_modules/.bin/tsc -p tsconfig.json
	node_modules/.bin/eslint --max-warnings 0 .
	node_modules/.bin/prettier --check .

.PHONY: format
format: $(STAMP) ## Rewrite files with Prettier
	node_modules/.bin/prettier --write .

.PHONY: validate-samples
validate-samples: $(STAMP) ## Validate the sample manifests with `airlock validate`
	bin/airlock validate --policy crds/samples/valid
