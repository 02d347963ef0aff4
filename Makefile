# Build, test and demo entry points. The scripts in hack/ do the work; see each for details.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go
# The race detector needs cgo and a C compiler.
RACE ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)

.PHONY: build components envtest-bins cluster-bins cluster-up cluster-down cluster-smoke e2e-cluster unit e2e compat critest installer-cases agent-test helm chart-sync chart-test image test demo bench bench-controller lint generate verify clean distclean

# VERSION is what the shim reports to containerd (containerd-shim-reaper-v2 -info).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

## build: build every command into bin/ as static binaries
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X reaper.dev/reaper/shim.Version=$(VERSION)" -o bin/ ./cmd/...

## components: build the pinned containerd, runc and crictl, and the local image tarballs
components:
	hack/build-components.sh
	hack/images.sh

## envtest-bins: build the pinned etcd and kube-apiserver for envtest and print the folder to set as
## KUBEBUILDER_ASSETS
envtest-bins:
	hack/envtest-bins.sh

## cluster-bins: build the pinned kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
## kubectl and etcd of a local cluster into the cache, and print their folders
cluster-bins:
	hack/cluster-bins.sh

# CLUSTER_DIR is the folder of the cluster that cluster-up starts and cluster-down removes: an
# absolute path of at most 34 characters.
CLUSTER_DIR ?= /tmp/reaper-cluster

## cluster-up: start a single-node Kubernetes cluster (etcd, kube-apiserver, controller-manager,
## scheduler, kube-proxy, kubelet on a private containerd) in a new network namespace, with every
## file under CLUSTER_DIR (needs root). It prints how to run kubectl against it.
## CLUSTER_REAPER=none starts containerd without the Reaper handlers, for a Helm install.
cluster-up: components build cluster-bins
	hack/cluster-up.sh $(CLUSTER_DIR)

## cluster-down: stop the cluster of CLUSTER_DIR and remove it with what it created on the host
cluster-down:
	hack/cluster-down.sh $(CLUSTER_DIR)

## cluster-smoke: start a cluster, run a runc pod, check kubectl logs, tear down and check that the
## host is as before (needs root)
cluster-smoke: components build cluster-bins
	hack/cluster-smoke.sh

## e2e-cluster: start a cluster with CLUSTER_REAPER=none, helm install Reaper from the image of
## make image, run reaper workloads, helm upgrade to a second build and helm uninstall, tear down,
## check the host and print "N passed, N failed" (needs root). E2E_CLUSTER_FLAGS passes flags to
## go test; the steps build on helm install, so keep it in a -run filter, such as
## E2E_CLUSTER_FLAGS="-run 'TestReaper/(helm_install|job)'". CLUSTER_KEEP=1 keeps the cluster.
e2e-cluster: components build cluster-bins image
	VERSION=$(VERSION) hack/e2e-cluster.sh $(E2E_CLUSTER_FLAGS)

## unit: run the tests of every package except the suites under test/, which need real components.
## The controller's tests run a real etcd and kube-apiserver, which envtest-bins builds on first use.
unit: envtest-bins
	assets=$$(hack/envtest-bins.sh); \
	KUBEBUILDER_ASSETS=$$assets $(GO) test $(RACE) $$($(GO) list ./... | grep -v -e '/test/')

## e2e: run the end-to-end CRI suite against a private containerd, in a new network namespace that
## holds the CNI bridge network of its pods (needs root)
e2e: components build
	hack/e2e.sh

## compat: run the CRI suite on the older containerd versions of COMPAT_VERSIONS (needs root)
compat: components build
	hack/compat.sh

## critest: run the CRI validation suite critest with the reaper and the runc handler, serially,
## and fail on a reaper failure that hack/critest/expected-failures.txt does not list (needs root)
## CRITEST_FLAGS passes flags to both critest runs, such as CRITEST_FLAGS=-ginkgo.focus=Streaming.
critest: components build
	hack/critest.sh

## installer-cases: load the installer's results for the node configurations of
## installer/testdata/cases with containerd v2.4.2 and v1.7.35, and restart a private containerd
## through the installer, supervised and under a private systemd (needs root)
installer-cases:
	hack/installer-cases.sh

## agent-test: run the node agent of reaper-installer against envtest's kube-apiserver and etcd, on
## private containerds that it restarts by the signal method (needs root)
## AGENT_TEST_FLAGS passes flags to go test, such as AGENT_TEST_FLAGS="-run TestDriftRepaired".
agent-test:
	hack/agent-test.sh $(AGENT_TEST_FLAGS)

## test: run verify, unit, installer-cases, agent-test, chart-test, image (with its import check),
## cluster-smoke, e2e-cluster, e2e, compat and critest, and fail if any fails
test:
	status=0; for target in verify unit installer-cases agent-test chart-test image cluster-smoke e2e-cluster e2e compat critest; do \
		$(MAKE) $$target || { status=1; echo "make $$target failed" >&2; }; \
	done; exit $$status

## demo: start a local cluster in CLUSTER_DIR, helm install Reaper from the image of make image,
## run examples/first-pod.yaml, show kubectl get reapernodes, its logs and an exec, and tear
## down; KEEP=1 keeps the cluster and prints how to use and remove it (needs root)
demo: components build cluster-bins image
	VERSION=$(VERSION) CLUSTER_DIR=$(CLUSTER_DIR) hack/demo.sh

## bench: compare the reaper and runc handlers on a private containerd, write docs/benchmarks.md (needs root)
## BENCH_FLAGS passes flags to hack/bench, such as BENCH_FLAGS="-samples 5 -pods 4".
bench: components build
	BENCH_COMMAND='make bench$(if $(BENCH_FLAGS), BENCH_FLAGS="$(BENCH_FLAGS)")' hack/bench/run.sh $(BENCH_FLAGS)

## bench-controller: measure reaper-controller on envtest with 5000 Nodes and simulated agents, and
## write its section of docs/benchmarks.md. BENCH_CONTROLLER_FLAGS passes flags to
## hack/bench/controller, such as BENCH_CONTROLLER_FLAGS="-nodes 1000 -quiet 10s".
bench-controller: envtest-bins
	assets=$$(hack/envtest-bins.sh); \
	KUBEBUILDER_ASSETS=$$assets $(GO) run ./hack/bench/controller -output docs/benchmarks.md \
		-command 'make bench-controller$(if $(BENCH_CONTROLLER_FLAGS), BENCH_CONTROLLER_FLAGS="$(BENCH_CONTROLLER_FLAGS)")' $(BENCH_CONTROLLER_FLAGS)

## lint: go vet, gofmt check and golangci-lint
lint:
	hack/lint.sh

## generate: write the API deep-copy code, the CRDs under config/crd/bases and the controller's
## ClusterRole config/rbac/role.yaml with the pinned controller-gen
generate:
	hack/generate.sh

## verify: run generate and fail if a generated file differs from the committed one
verify:
	hack/verify.sh

## helm: build the pinned helm v4 into the cache and print its path
helm:
	hack/helm.sh

## chart-sync: copy the generated CRDs and the controller's ClusterRole into charts/reaper/files;
## run it after make generate
chart-sync:
	hack/chart-sync.sh

## chart-test: render charts/reaper and config/default with default and edge values, check the
## schema, run helm lint --strict with the pinned helm, and in envtest's kube-apiserver create
## the objects, run the controller and its teardown with them, and helm install, upgrade and
## uninstall the chart
chart-test:
	HELM=$$(hack/helm.sh) KUBEBUILDER_ASSETS=$$(hack/envtest-bins.sh) $(GO) test -count=1 ./test/chart/...

## image: build Reaper's image without Docker as the OCI archive bin/images/reaper-VERSION.tar,
## named reaper:VERSION, and check that a private containerd imports and runs it (needs root)
image: build
	VERSION=$(VERSION) hack/image.sh --check

## clean: remove bin/ and the image tarballs; the component builds in .cache stay
clean:
	rm -rf bin .cache/images

## distclean: also remove every cached component build
distclean: clean
	rm -rf .cache
