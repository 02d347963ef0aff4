package shim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/pelletier/go-toml/v2"

	"reaper.dev/reaper/runtime"
	"reaper.dev/reaper/runtime/initproc"
)

// options are the runtime options of the handler a pod runs with: the keys of the
// options table of its runtime in containerd's config, which containerd passes to
// every task it creates.
type options struct {
	// Protected turns the protected mode on.
	Protected bool `toml:"Protected"`
	// ProtectedRoot is "overlay" (the default) or "read-only".
	ProtectedRoot string `toml:"ProtectedRoot"`
	// MaskedPaths are masked in the protected mode, with the default ones.
	MaskedPaths []string `toml:"MaskedPaths"`
	// SystemdCgroup marks that the kubelet uses the systemd cgroup driver, as runc's key
	// of that name does. The shim then requires cgroupsPath in the systemd form.
	SystemdCgroup bool `toml:"SystemdCgroup"`

	// containerd's own keys of the table, read by containerd.
	TypeURL    string `toml:"TypeUrl"`
	ConfigPath string `toml:"ConfigPath"`
}

// parseOptions decodes the runtime options of a CreateTaskRequest. containerd sends
// a runtimeoptions.Options holding the options table as TOML, or the path of a TOML
// file when the table sets ConfigPath.
func parseOptions(value typeurl.Any) (options, error) {
	if value == nil || len(value.GetValue()) == 0 {
		return options{}, nil
	}

	decoded, err := typeurl.UnmarshalAny(value)
	if err != nil {
		return options{}, fmt.Errorf("failed to decode the runtime options: %w", err)
	}
	raw, ok := decoded.(*runtimeoptions.Options)
	if !ok {
		return options{}, fmt.Errorf("unsupported runtime options %s: give the reaper runtime an options table of its own keys", value.GetTypeUrl())
	}

	path := raw.GetConfigPath()
	if path == "" {
		return decodeOptions(raw.GetConfigBody(), "the runtime's options table")
	}

	body, err := os.ReadFile(path)
	if err != nil {
		return options{}, fmt.Errorf("failed to read the runtime options: %w", err)
	}
	return decodeOptions(body, path)
}

func decodeOptions(body []byte, source string) (options, error) {
	var opts options
	decoder := toml.NewDecoder(bytes.NewReader(body)).DisallowUnknownFields()
	if err := decoder.Decode(&opts); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return options{}, fmt.Errorf("invalid runtime options in %s: unknown keys %s (Reaper reads Protected, ProtectedRoot, MaskedPaths and SystemdCgroup)", source, unknownKeys(strict))
		}
		return options{}, fmt.Errorf("invalid runtime options in %s: %w", source, err)
	}

	switch opts.ProtectedRoot {
	case "", initproc.RootOverlay, initproc.RootReadOnly:
	default:
		return options{}, fmt.Errorf("invalid ProtectedRoot %q in %s: use %q or %q", opts.ProtectedRoot, source, initproc.RootOverlay, initproc.RootReadOnly)
	}
	return opts, nil
}

func unknownKeys(err *toml.StrictMissingError) string {
	keys := make([]string, 0, len(err.Errors))
	for _, e := range err.Errors {
		keys = append(keys, strings.Join(e.Key(), "."))
	}
	return strings.Join(keys, ", ")
}

// checkCgroupDriver fails when the handler is set up for the systemd cgroup driver and
// the spec's cgroupsPath is a plain path, which the cgroupfs driver sends: the kubelet
// and the handler disagree, as runc reports too.
func (o options) checkCgroupDriver(spec *specs.Spec) error {
	if !o.SystemdCgroup || spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return nil
	}
	if runtime.IsSystemdCgroupsPath(spec.Linux.CgroupsPath) {
		return nil
	}
	return fmt.Errorf("the runtime handler sets SystemdCgroup = true, but cgroupsPath %q is not of the systemd form slice:prefix:name, "+
		"so the kubelet uses the cgroupfs driver; run reaper-installer install again to match the kubelet's driver", spec.Linux.CgroupsPath)
}

// protection returns what the protected mode applies, or nil when it is off.
func (o options) protection() *initproc.Protection {
	if !o.Protected {
		return nil
	}

	root := o.ProtectedRoot
	if root == "" {
		root = initproc.RootOverlay
	}
	return &initproc.Protection{
		Root:        root,
		MaskedPaths: append(slices.Clone(runtime.DefaultMaskedPaths), o.MaskedPaths...),
	}
}
