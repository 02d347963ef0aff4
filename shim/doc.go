// Package shim implements containerd-shim-reaper-v2: containerd's task API v3 served
// over ttrpc, the start and delete modes of the shim binary, stdio and events.
//
// One shim process serves every container of a pod. Containers are host processes
// created by the runtime package; the pod sandbox is the shim binary itself in its
// pause mode. The shim is a child subreaper, and one loop collects every exit.
package shim
