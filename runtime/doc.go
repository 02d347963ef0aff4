// Package runtime turns an OCI runtime spec into a plain process on the host.
//
// It is the core shared by containerd-shim-reaper-v2 and reaper-runtime. A container
// starts through an init helper (package initproc): reaper-init, or the calling binary
// re-executed in its init mode. The
// helper applies the process settings of the spec: rlimits, OOM score, capabilities,
// user, groups, umask, working directory and no_new_privs. It resolves args[0]
// against the spec's PATH and reports that it is ready. Create then moves it into the
// spec's cgroup. The helper blocks on an exec FIFO until Start, then execve's the
// workload with exactly the spec's environment.
//
// Parts of the spec that would change the host (hostname, sysctls, namespaces, the
// root filesystem, /proc and /sys mounts, device cgroup rules) are never applied.
//
// The package imports nothing from Kubernetes.
package runtime
