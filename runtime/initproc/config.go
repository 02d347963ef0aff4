package initproc

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InitArg is the first argument that switches a Reaper binary into the init helper.
const InitArg = "init"

// File descriptors the init helper inherits from its parent, after stdin, stdout and stderr.
const (
	ConfigFD = 3 // read end of a pipe carrying the JSON InitConfig
	StatusFD = 4 // write end of a pipe for Status messages, closed by execve
	FIFOFD   = 5 // O_PATH descriptor of the exec FIFO
)

// InitConfig is the part of an OCI process the init helper applies before execve.
type InitConfig struct {
	// Path is the executable to run; when empty, args[0] is resolved against the PATH
	// of Env.
	Path            string     `json:"path,omitempty"`
	Args            []string   `json:"args"`
	Env             []string   `json:"env"`
	Cwd             string     `json:"cwd"`
	User            specs.User `json:"user"`
	NoNewPrivileges bool       `json:"noNewPrivileges,omitempty"`

	Capabilities *specs.LinuxCapabilities `json:"capabilities,omitempty"`
	Rlimits      []specs.POSIXRlimit      `json:"rlimits,omitempty"`
	OOMScoreAdj  *int                     `json:"oomScoreAdj,omitempty"`

	// NetworkNamespace and MountNamespace are empty to stay in the host's namespace,
	// NewNamespace for one of the process's own, or the path of one to join, such as
	// /proc/PID/ns/net.
	NetworkNamespace string `json:"networkNamespace,omitempty"`
	MountNamespace   string `json:"mountNamespace,omitempty"`
	// NetworkSysctls are net.* sysctls written in the network namespace of the process,
	// never the host's.
	NetworkSysctls map[string]string `json:"networkSysctls,omitempty"`

	// Mounts are attached in a new mount namespace, in order.
	Mounts []Mount `json:"mounts,omitempty"`
	// Protection, when set, hides the host behind a read-only or overlay root.
	Protection *Protection `json:"protection,omitempty"`
	// ScratchDir is an empty directory on the host, the mount point of the private tmpfs
	// that holds the overlays' writes. The tmpfs is mounted in the new mount namespace only.
	ScratchDir string `json:"scratchDir,omitempty"`
}

// NewNamespace requests a namespace of the process's own.
const NewNamespace = "new"

// Mount is a bind mount of a host path at a destination in the container's view.
type Mount struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Recursive binds the mounts under Source too (rbind).
	Recursive bool `json:"recursive,omitempty"`
	// ReadOnly makes the top mount read-only; RecursiveReadOnly also the ones under it.
	ReadOnly          bool `json:"readOnly,omitempty"`
	RecursiveReadOnly bool `json:"recursiveReadOnly,omitempty"`
	// Propagation is PropagationPrivate (the default), PropagationSlave or
	// PropagationShared.
	Propagation string `json:"propagation,omitempty"`
	// Attributes are MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV and MOUNT_ATTR_NOEXEC bits.
	Attributes uint64 `json:"attributes,omitempty"`
}

// Propagation values of a Mount.
const (
	PropagationPrivate = "private"
	PropagationSlave   = "slave"
	PropagationShared  = "shared"
)

// Protection is the part of the host that the protected mode hides or makes read-only.
type Protection struct {
	// Root is RootOverlay or RootReadOnly.
	Root string `json:"root"`
	// MaskedPaths are host paths, with shell patterns, shown empty and read-only.
	MaskedPaths []string `json:"maskedPaths,omitempty"`
}

// Root modes of the protected mode.
const (
	// RootOverlay puts the host root behind an overlay whose writes vanish with the
	// container; the host's other mounts are read-only.
	RootOverlay = "overlay"
	// RootReadOnly makes the host root and every mount under it read-only.
	RootReadOnly = "read-only"
)

// NewInitConfig takes the process settings that Reaper applies from an OCI process.
func NewInitConfig(process *specs.Process) InitConfig {
	cwd := process.Cwd
	if cwd == "" {
		cwd = "/"
	}

	return InitConfig{
		Args:            process.Args,
		Env:             process.Env,
		Cwd:             cwd,
		User:            process.User,
		NoNewPrivileges: process.NoNewPrivileges,
		Capabilities:    process.Capabilities,
		Rlimits:         process.Rlimits,
		OOMScoreAdj:     process.OOMScoreAdj,
	}
}

// Status is one message on the status pipe, sent as a line of JSON.
type Status struct {
	Ready    bool     `json:"ready,omitempty"`
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}
