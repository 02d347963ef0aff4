// Package agent runs the node agent of reaper-installer against a real kube-apiserver and
// etcd (envtest) and a private containerd under a supervisor loop, and checks what the
// agent writes on the host and reports in its ReaperNode. hack/agent-test.sh builds the
// components and runs it as root.
package agent
