package installer

import (
	"errors"
	"fmt"
)

// RestartMethod names the mechanism that makes containerd load a changed config.
type RestartMethod string

const (
	// RestartAuto picks the method from the host's distribution table.
	RestartAuto RestartMethod = "auto"
	// RestartSystemd restarts containerd's systemd unit over D-Bus.
	RestartSystemd RestartMethod = "systemd"
	// RestartSignal is for hosts without systemd. NOTE: how it restarts containerd is not decided yet.
	RestartSignal RestartMethod = "signal"
	// RestartNone leaves the restart to the operator.
	RestartNone RestartMethod = "none"
)

// ErrNotImplemented is returned for a valid restart method that the installer cannot run yet.
var ErrNotImplemented = errors.New("not implemented yet")

// ParseRestartMethod returns the restart method named s. Only RestartNone is implemented; the
// other known methods return an error wrapping ErrNotImplemented.
func ParseRestartMethod(s string) (RestartMethod, error) {
	switch m := RestartMethod(s); m {
	case RestartNone:
		return m, nil
	case RestartAuto, RestartSystemd, RestartSignal:
		return "", fmt.Errorf("restart method %q: %w; use %q and restart containerd yourself", s, ErrNotImplemented, RestartNone)
	default:
		return "", fmt.Errorf("invalid restart method %q; valid methods are auto, systemd, signal and none", s)
	}
}
