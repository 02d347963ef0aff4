package runtime

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"reaper.dev/reaper/runtime/initproc"
)

// MountOptions are the OCI mount options of a bind mount that Reaper applies.
var MountOptions = []string{
	"bind", "rbind", "ro", "rro", "rw",
	"private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable",
	"nosuid", "nodev", "noexec",
}

// kernelViews are destinations whose mounts would replace the host's view of the
// kernel, processes or devices; Reaper never mounts on them or below /proc and /sys.
var kernelViews = []string{"/", "/proc", "/sys", "/dev"}

// DefaultMaskedPaths are the host secrets the protected mode shows empty.
var DefaultMaskedPaths = []string{
	"/etc/shadow",
	"/etc/shadow-",
	"/etc/gshadow",
	"/etc/gshadow-",
	"/etc/ssh/ssh_host_*_key",
	"/root/.ssh",
}

// BindMounts returns the spec's bind mounts as the init helper attaches them. Other
// mount types, such as the proc, sysfs and devpts mounts of a default spec, and
// binds on the host's kernel views are left out, so the process keeps the host's.
func BindMounts(spec *specs.Spec) ([]initproc.Mount, error) {
	var mounts []initproc.Mount
	for _, m := range spec.Mounts {
		if !isBind(m) || isKernelView(m.Destination) {
			continue
		}

		mount, err := bindMount(m)
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, mount)
	}
	return mounts, nil
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func isKernelView(destination string) bool {
	clean := filepath.Clean("/" + destination)
	return slices.Contains(kernelViews, clean) || strings.HasPrefix(clean, "/proc/") || strings.HasPrefix(clean, "/sys/")
}

func bindMount(m specs.Mount) (initproc.Mount, error) {
	if !filepath.IsAbs(m.Destination) {
		return initproc.Mount{}, fmt.Errorf("invalid mount destination %q: use an absolute path", m.Destination)
	}
	if !filepath.IsAbs(m.Source) {
		return initproc.Mount{}, fmt.Errorf("invalid source %q of the mount at %s: use an absolute path on the host", m.Source, m.Destination)
	}

	mount := initproc.Mount{
		Source:      m.Source,
		Destination: filepath.Clean(m.Destination),
		Propagation: initproc.PropagationPrivate,
	}
	for _, option := range m.Options {
		applyMountOption(&mount, option)
	}
	return mount, nil
}

// applyMountOption sets what one OCI mount option requests and reports whether it
// is one of MountOptions. Other options, such as filesystem options that a bind does
// not take, change nothing.
func applyMountOption(mount *initproc.Mount, option string) bool {
	switch option {
	case "bind":
		// The default: a bind of the source mount only.
	case "rw":
		mount.ReadOnly, mount.RecursiveReadOnly = false, false
	case "rbind":
		mount.Recursive = true
	case "ro":
		mount.ReadOnly = true
	case "rro":
		mount.ReadOnly, mount.RecursiveReadOnly = true, true
	case "private", "rprivate", "unbindable", "runbindable":
		mount.Propagation = initproc.PropagationPrivate
	case "slave", "rslave":
		mount.Propagation = initproc.PropagationSlave
	case "shared", "rshared":
		mount.Propagation = initproc.PropagationShared
	case "nosuid":
		mount.Attributes |= unix.MOUNT_ATTR_NOSUID
	case "nodev":
		mount.Attributes |= unix.MOUNT_ATTR_NODEV
	case "noexec":
		mount.Attributes |= unix.MOUNT_ATTR_NOEXEC
	default:
		return false
	}
	return true
}

// NetworkNamespace returns the network namespace the spec requests: the path of
// one to join, NewNamespace for a new one, or "" for the host's.
func NetworkNamespace(spec *specs.Spec) string {
	if spec.Linux == nil {
		return ""
	}

	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != specs.NetworkNamespace {
			continue
		}
		if ns.Path == "" {
			return initproc.NewNamespace
		}
		return ns.Path
	}
	return ""
}

// NetworkSysctls returns the spec's net.* sysctls, which apply inside a network
// namespace of the pod's own; the others would change the host and are left out.
func NetworkSysctls(spec *specs.Spec) map[string]string {
	if spec.Linux == nil {
		return nil
	}

	sysctls := map[string]string{}
	for key, value := range spec.Linux.Sysctl {
		if strings.HasPrefix(key, "net.") {
			sysctls[key] = value
		}
	}
	if len(sysctls) == 0 {
		return nil
	}
	return sysctls
}
