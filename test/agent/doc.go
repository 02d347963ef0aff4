// Package agent tests the node agent of reaper-installer against a real kube-apiserver and
// etcd (envtest). Its hosts have a private containerd under a supervisor loop, or are
// host-root copies of the installer's node cases. The tests check what the agent writes on
// the host and reports in its ReaperNode. hack/agent-test.sh builds the components and runs
// it as root.
package agent
