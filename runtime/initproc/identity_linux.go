package initproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rlimitResources maps the OCI rlimit names to setrlimit resources.
var rlimitResources = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

func applyRlimits(rlimits []specs.POSIXRlimit) error {
	for _, rlimit := range rlimits {
		resource, ok := rlimitResources[rlimit.Type]
		if !ok {
			return fmt.Errorf("invalid rlimit type %q: use a name such as RLIMIT_NOFILE", rlimit.Type)
		}

		limit := unix.Rlimit{Cur: rlimit.Soft, Max: rlimit.Hard}
		if err := unix.Setrlimit(resource, &limit); err != nil {
			return fmt.Errorf("failed to set %s to soft %d, hard %d: %w", rlimit.Type, rlimit.Soft, rlimit.Hard, err)
		}
	}
	return nil
}

// applyOOMScoreAdj writes the spec's oom_score_adj. Lowering it needs
// CAP_SYS_RESOURCE; where the host forbids that, the current value is kept and a
// warning returned.
func applyOOMScoreAdj(adj *int) (warning string, err error) {
	if adj == nil {
		return "", nil
	}

	const path = "/proc/self/oom_score_adj"
	err = os.WriteFile(path, []byte(strconv.Itoa(*adj)), 0)
	if err == nil {
		return "", nil
	}

	if !errors.Is(err, os.ErrPermission) {
		return "", fmt.Errorf("failed to set oom_score_adj to %d: %w", *adj, err)
	}

	current, readErr := os.ReadFile(path)
	if readErr != nil {
		return "", fmt.Errorf("failed to set oom_score_adj to %d: %w", *adj, err)
	}
	return fmt.Sprintf("oom_score_adj %d is lower than this host allows without CAP_SYS_RESOURCE; kept %s",
		*adj, strings.TrimSpace(string(current))), nil
}

// capabilitySets are the parsed capability sets of an OCI process.
type capabilitySets struct {
	bounding, effective, inheritable, permitted, ambient []capability.Cap
}

// parseCapabilities resolves capability names. A nil spec means no capabilities,
// as in runc.
func parseCapabilities(spec *specs.LinuxCapabilities) (*capabilitySets, error) {
	if spec == nil {
		spec = &specs.LinuxCapabilities{}
	}

	known := make(map[string]capability.Cap)
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = c
	}

	sets := &capabilitySets{}
	for _, field := range []struct {
		names []string
		caps  *[]capability.Cap
	}{
		{spec.Bounding, &sets.bounding},
		{spec.Effective, &sets.effective},
		{spec.Inheritable, &sets.inheritable},
		{spec.Permitted, &sets.permitted},
		{spec.Ambient, &sets.ambient},
	} {
		for _, name := range field.names {
			c, ok := known[name]
			if !ok {
				return nil, fmt.Errorf("invalid capability %q: use a name such as CAP_NET_BIND_SERVICE", name)
			}
			*field.caps = append(*field.caps, c)
		}
	}
	return sets, nil
}

// dropBounding limits the bounding set, which caps what the workload, root or not,
// can ever hold after execve. It must run before the uid changes.
func (sets *capabilitySets) dropBounding() error {
	supported, err := capability.ListSupported()
	if err != nil {
		return fmt.Errorf("failed to list the capabilities of this kernel: %w", err)
	}

	keep := make(map[capability.Cap]bool, len(sets.bounding))
	for _, c := range sets.bounding {
		keep[c] = true
	}

	var drop []capability.Cap
	for _, c := range supported {
		if !keep[c] {
			drop = append(drop, c)
		}
	}

	if err := capability.DropBound(drop...); err != nil {
		return fmt.Errorf("failed to drop capabilities from the bounding set: %w", err)
	}
	return nil
}

// apply sets the effective, permitted, inheritable and ambient sets of the calling
// process, after the uid change.
func (sets *capabilitySets) apply() error {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("failed to read the process capabilities: %w", err)
	}

	caps.Clear(capability.CAPS)
	caps.Set(capability.EFFECTIVE, sets.effective...)
	caps.Set(capability.PERMITTED, sets.permitted...)
	caps.Set(capability.INHERITABLE, sets.inheritable...)
	if err := caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("failed to set the process capabilities: %w", err)
	}

	if err := capability.ResetAmbient(); err != nil {
		return fmt.Errorf("failed to clear the ambient capabilities: %w", err)
	}
	if len(sets.ambient) > 0 {
		if err := capability.SetAmbient(true, sets.ambient...); err != nil {
			return fmt.Errorf("failed to raise the ambient capabilities: %w", err)
		}
	}
	return nil
}
