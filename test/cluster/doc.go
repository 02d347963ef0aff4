// Package cluster contains the end-to-end suite of Reaper on a real Kubernetes cluster. It
// installs the Helm chart on the single-node cluster of hack/cluster-up.sh, runs the workloads a
// user runs with runtimeClassName reaper, upgrades the release under running pods and uninstalls
// it, which reverts the node. It drives the cluster with kubectl and helm, as a user would, and checks the
// node's files and processes directly.
//
// `make e2e-cluster` runs it through hack/e2e-cluster.sh, which starts the cluster, imports the
// images and sets the environment below. Run otherwise, the suite fails with the missing
// variable's name. The tests run in order as the subtests of TestReaper, because each step
// builds on the one before: install, workloads, upgrade, uninstall.
//
// Environment (set by hack/e2e-cluster.sh):
//
//	CLUSTER_DIR          the cluster's folder; its containerd lives in CLUSTER_DIR/c
//	CLUSTER_KUBECTL      kubectl binary; the suite runs in the cluster's network namespace
//	CLUSTER_HELM         helm binary
//	CLUSTER_VALUES       the Helm values of a Reaper install on this cluster
//	REAPER_VERSION       tag of the imported image reaper:VERSION that helm install uses
//	REAPER_NEXT_VERSION  tag of the second imported image, for helm upgrade
//	PLACEHOLDER_IMAGE    image of the reaper pods; Reaper runs host binaries, not its files
//	HTTPGET_IMAGE        image of the runc pod that fetches a URL through a Service
package cluster
