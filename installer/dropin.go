package installer

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

const (
	// DropInName is the file name of the Reaper-owned drop-in inside an imported directory.
	DropInName = "reaper.toml"
	// RuntimeType is the containerd runtime type served by containerd-shim-reaper-v2.
	RuntimeType = "io.containerd.reaper.v2"
	// DefaultHandler is the CRI runtime handler registered when no other is requested.
	DefaultHandler = "reaper"
	// DefaultProtectedHandler is the usual name of the handler of the protected mode.
	DefaultProtectedHandler = "reaper-protected"
)

// Handler is a CRI runtime handler served by the Reaper shim.
type Handler struct {
	Name string `json:"name"`
	// Protected gives the handler the runtime option that turns the protected mode on.
	Protected bool `json:"protected,omitempty"`
	// ProtectedRoot is "overlay" or "read-only", or empty for the shim's default.
	ProtectedRoot string `json:"protectedRoot,omitempty"`
	// SystemdCgroup marks that the kubelet uses the systemd cgroup driver, for the shim.
	SystemdCgroup bool `json:"systemdCgroup,omitempty"`
}

// ProtectedRoots are the values of Handler.ProtectedRoot the shim accepts.
var ProtectedRoots = []string{"overlay", "read-only"}

// options returns the keys of the handler's options table, which containerd passes to
// the shim with every task, or "" for none.
func (h Handler) options() string {
	options := ""
	if h.Protected {
		options += "Protected = true\n"
	}
	if h.ProtectedRoot != "" {
		options += fmt.Sprintf("ProtectedRoot = %q\n", h.ProtectedRoot)
	}
	if h.SystemdCgroup {
		options += "SystemdCgroup = true\n"
	}
	return options
}

// dropInHeader starts every drop-in the installer writes. The installer overwrites or removes a
// drop-in only when it starts with this header, so a file someone else placed there survives.
const dropInHeader = "# Written by reaper-installer; it rewrites this file on install and removes it on uninstall.\n"

// ErrNoDropInDir is returned when the root config imports no directory the installer can place
// its drop-in in.
var ErrNoDropInDir = errors.New("containerd config imports no drop-in directory")

// handlerPattern is the RFC 1123 label that Kubernetes requires of a RuntimeClass handler.
var handlerPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// DropInPath returns where the Reaper drop-in goes: DropInName inside DropInDir when the
// distribution gives one, else inside the directory of the first
// import that is a directory glob matching that name, such as `/etc/containerd/conf.d/*.toml`.
// Relative imports are resolved against the root config's directory, as containerd does.
// A config without a usable import returns an error wrapping ErrNoDropInDir.
func (c *ContainerdConfig) DropInPath() (string, error) {
	if c.DropInDir != "" {
		return filepath.Join(c.DropInDir, DropInName), nil
	}
	if len(c.Imports) == 0 {
		return "", fmt.Errorf("containerd config %s has no imports: %w", c.Path, ErrNoDropInDir)
	}

	for _, entry := range c.Imports {
		if dir, ok := importedDir(c.importPath(entry)); ok {
			return filepath.Join(dir, DropInName), nil
		}
	}
	return "", fmt.Errorf("containerd config %s: none of its imports %q is a directory glob that matches %s: %w",
		c.Path, c.Imports, DropInName, ErrNoDropInDir)
}

// importPath returns where an import entry points in the installer's view: an absolute
// entry is a path on the host, a relative one is relative to the root config's folder.
func (c *ContainerdConfig) importPath(entry string) string {
	pattern := filepath.Clean(entry)
	if filepath.IsAbs(pattern) {
		return filepath.Join("/", c.HostRoot, pattern)
	}
	return filepath.Join(filepath.Dir(c.Path), pattern)
}

// importedDir returns the directory of an import pattern whose last element is a glob
// matching DropInName and whose directory part contains no glob characters.
func importedDir(pattern string) (string, bool) {
	dir, base := filepath.Split(pattern)
	// containerd globs an import only when it contains '*', and filepath.Glob then also expands
	// '?' and '[' anywhere in the path.
	if !strings.Contains(base, "*") || strings.ContainsAny(dir, "*?[") {
		return "", false
	}
	if ok, err := filepath.Match(base, DropInName); err != nil || !ok {
		return "", false
	}
	return filepath.Clean(dir), true
}

// runtimeEntry is one `containerd.runtimes.<handler>` table in the drop-in.
type runtimeEntry struct {
	RuntimeType string `toml:"runtime_type"`
	RuntimePath string `toml:"runtime_path"`
}

// RenderDropIn returns the drop-in that registers each handler with runtime type RuntimeType and
// the shim in installDir. The drop-in carries the root config's version, because containerd
// migrates each file on its own version before merging it.
func RenderDropIn(version int64, handlers []Handler, installDir string) ([]byte, error) {
	tables, err := renderHandlerTables(version, handlers, installDir)
	if err != nil {
		return nil, err
	}

	var out bytes.Buffer
	out.WriteString(dropInHeader)
	fmt.Fprintf(&out, "version = %d\n", version)
	out.Write(tables)
	return out.Bytes(), nil
}

// renderHandlerTables returns one `containerd.runtimes.<handler>` table per handler, each
// after an empty line.
func renderHandlerTables(version int64, handlers []Handler, installDir string) ([]byte, error) {
	pluginID, err := RuntimePluginID(version)
	if err != nil {
		return nil, err
	}
	if err := validateHandlers(handlers); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(installDir) {
		return nil, fmt.Errorf("install directory %q is not an absolute path; containerd needs an absolute runtime_path", installDir)
	}
	entry, err := toml.Marshal(runtimeEntry{
		RuntimeType: RuntimeType,
		RuntimePath: filepath.Join(filepath.Clean(installDir), ShimBinary),
	})
	if err != nil {
		return nil, fmt.Errorf("encode runtime entry: %w", err)
	}
	var out bytes.Buffer
	for _, handler := range handlers {
		// The plugin ID comes from RuntimePluginID and the handler matched handlerPattern, so
		// both are safe inside a quoted and a bare TOML key.
		fmt.Fprintf(&out, "\n[plugins.%q.containerd.runtimes.%s]\n", pluginID, handler.Name)
		out.Write(entry)
		if options := handler.options(); options != "" {
			fmt.Fprintf(&out, "\n[plugins.%q.containerd.runtimes.%s.options]\n%s", pluginID, handler.Name, options)
		}
	}
	return out.Bytes(), nil
}

func validateHandlers(handlers []Handler) error {
	if len(handlers) == 0 {
		return errors.New("no runtime handler given; pass at least one, such as " + DefaultHandler)
	}

	seen := make(map[string]bool, len(handlers))
	for _, h := range handlers {
		if h.ProtectedRoot != "" && !slices.Contains(ProtectedRoots, h.ProtectedRoot) {
			return fmt.Errorf("invalid protected root %q of runtime handler %q: use one of %q", h.ProtectedRoot, h.Name, ProtectedRoots)
		}
		handler := h.Name
		if len(handler) > 63 || !handlerPattern.MatchString(handler) {
			return fmt.Errorf("invalid runtime handler %q: it must be a lowercase RFC 1123 label "+
				"(a-z, 0-9 and '-', at most 63 characters), as RuntimeClass handlers are", handler)
		}
		if seen[handler] {
			return fmt.Errorf("runtime handler %q is given twice", handler)
		}
		seen[handler] = true
	}
	return nil
}

// isOwnedDropIn reports whether data is a drop-in this installer wrote.
func isOwnedDropIn(data []byte) bool {
	return bytes.HasPrefix(data, []byte(dropInHeader))
}
