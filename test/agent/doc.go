// Package agent runs the node agent of reaper-installer against a real kube-apiserver and
// etcd (envtest), on hosts with a private containerd under a supervisor loop and on
// host-root copies of the installer's node cases, and checks what the agent writes on the
// host and reports in its ReaperNode. hack/agent-test.sh builds the components and runs
// it as root.
package agent
