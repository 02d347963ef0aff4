package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const (
	stateFile    = "state.json"
	exitFile     = "exit.json"
	execFIFOFile = "exec.fifo"
	// scratchDir is the mount point of a container's private tmpfs, in its own
	// mount namespace only.
	scratchDir = "scratch"
)

// State is the record Reaper keeps on disk for a container. A later process
// (reaper-runtime, or the shim's delete mode after a crash) finds and cleans up the
// container with it.
type State struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Pid         int               `json:"pid"`
	StartTime   uint64            `json:"startTime"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`

	// CgroupPath is the container's cgroup below the cgroup root; empty when the spec
	// names none. OwnsCgroup is false for an exec process, which only joins it.
	CgroupPath string `json:"cgroupPath,omitempty"`
	OwnsCgroup bool   `json:"ownsCgroup,omitempty"`
}

// Exit records how a container's main process ended.
type Exit struct {
	Pid      int       `json:"pid"`
	Status   int       `json:"status"`
	ExitedAt time.Time `json:"exitedAt"`
}

// writeJSON replaces path atomically with the JSON of value, readable only by root.
func writeJSON(path string, value any) error {
	data, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", path, err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())

	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}

	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}

	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, value any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}

	if err := json.Unmarshal(data, value); err != nil {
		return fmt.Errorf("failed to decode %s: %w", path, err)
	}
	return nil
}
