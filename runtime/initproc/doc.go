// Package initproc is the code that runs inside a container's process before its
// workload: the init helper, which applies the spec's process settings and execve's
// the workload once Start opens the exec FIFO, and the pause process of a pod sandbox.
//
// It links neither cgroups nor containerd, so reaper-init, the binary built on it,
// stays small and starts fast. The runtime package starts the helper and speaks its
// protocol: a JSON InitConfig on ConfigFD, Status messages back on StatusFD.
package initproc
