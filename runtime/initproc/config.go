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
}

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
