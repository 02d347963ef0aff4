// Package chart tests the Helm chart charts/reaper and the kustomize base config/default: it
// renders them with the Helm v4 library and kustomize's krusty, decodes every object strictly
// into its Kubernetes type and checks what a cluster user relies on. It also creates the objects
// in a real kube-apiserver started by envtest, whose Pod Security admission checks the pod
// templates. The helm lint test runs the helm binary that hack/helm.sh builds; `make
// chart-test` builds it and etcd and kube-apiserver and runs this package.
package chart
