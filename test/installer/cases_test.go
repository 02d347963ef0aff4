package installer

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// reaperHandlers are the runtime handlers the golden installs register.
var reaperHandlers = []string{"reaper", "reaper-protected"}

// TestGoldenConfigsLoad dumps each case's configuration before and after the install with a
// real containerd, and checks that the handlers appear and nothing else changed.
func TestGoldenConfigsLoad(t *testing.T) {
	binaries := map[string]string{
		"containerd":     os.Getenv("INSTALLER_CONTAINERD"),
		"containerd 1.x": os.Getenv("INSTALLER_CONTAINERD_1X"),
	}
	for name, path := range binaries {
		if path == "" {
			t.Fatalf("the path of %s is not set; run this test through hack/installer-cases.sh, which builds it", name)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("each dump runs in a new mount namespace, which needs root; run hack/installer-cases.sh as root")
	}

	golden, err := filepath.Abs("../../installer/testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := os.ReadDir(golden)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range cases {
		original, mountPoint := caseConfigDir(t, filepath.Join(golden, "..", "cases", c.Name()))
		installed := filepath.Join(golden, c.Name())
		for _, binary := range binariesFor(t, rendered(t, installed, ""), binaries) {
			t.Run(c.Name()+"/"+filepath.Base(filepath.Dir(filepath.Dir(binary))), func(t *testing.T) {
				before := dumpConfig(t, binary, rendered(t, original, binary), mountPoint)
				after := dumpConfig(t, binary, rendered(t, installed, binary), mountPoint)

				plugin := criPlugin(t, after)
				runtimes := runtimesOf(after, plugin)
				for _, handler := range reaperHandlers {
					if _, ok := runtimes[handler]; !ok {
						t.Errorf("containerd does not list the handler %s under %s after the install", handler, plugin)
					}
				}
				if _, ok := runtimes["runc"]; !ok {
					t.Errorf("containerd lost the runc handler after the install")
				}

				// The install may add an import; it keeps every import there was.
				beforeImports, afterImports := withoutReaper(before, plugin), withoutReaper(after, plugin)
				for _, entry := range beforeImports {
					if !slices.Contains(afterImports, entry) {
						t.Errorf("the import %s is gone after the install (imports now: %q)", entry, afterImports)
					}
				}
				for _, change := range changedKeys("", before, after) {
					t.Errorf("config dump changed apart from Reaper's handlers: %s", change)
				}
			})
		}
	}
}

// binariesFor returns the containerd binaries that read the schema version of the case.
func binariesFor(t *testing.T, dir string, binaries map[string]string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var root struct {
		Version int `toml:"version"`
	}
	if err := toml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	if root.Version <= 2 {
		// containerd 1.x reads versions 1 and 2, and 2.x migrates them.
		return []string{binaries["containerd 1.x"], binaries["containerd"]}
	}
	return []string{binaries["containerd"]}
}

// dumpConfig runs `containerd config dump` with dir shown at mountPoint in a new mount
// namespace, with tmpfs over /etc and /var/lib there, and returns the parsed output.
func dumpConfig(t *testing.T, binary, dir, mountPoint string) map[string]any {
	t.Helper()
	script := `mount -t tmpfs reaper-cases /etc && mount -t tmpfs reaper-cases /var/lib &&
mkdir -p "$3" && mount --bind "$1" "$3" && exec "$2" --config "$3/config.toml" config dump`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "dump", dir, binary, mountPoint)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s config dump of %s failed: %v\n%s", binary, dir, err, stderr.String())
	}

	dump := map[string]any{}
	if err := toml.Unmarshal(out, &dump); err != nil {
		t.Fatalf("config dump of %s is not TOML: %v", dir, err)
	}
	return dump
}

// criPlugin returns the plugin whose runtimes are the CRI handlers in a dump.
func criPlugin(t *testing.T, dump map[string]any) string {
	t.Helper()
	for _, plugin := range []string{"io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri"} {
		if runtimesOf(dump, plugin) != nil {
			return plugin
		}
	}
	t.Fatal("the config dump has no CRI runtimes")
	return ""
}

func runtimesOf(dump map[string]any, plugin string) map[string]any {
	plugins, _ := dump["plugins"].(map[string]any)
	cri, _ := plugins[plugin].(map[string]any)
	containerd, _ := cri["containerd"].(map[string]any)
	runtimes, _ := containerd["runtimes"].(map[string]any)
	return runtimes
}

// withoutReaper removes what the install adds to a dump, the handlers and the imports, and
// returns the imports of the dump.
func withoutReaper(dump map[string]any, plugin string) []string {
	runtimes := runtimesOf(dump, plugin)
	for _, handler := range reaperHandlers {
		delete(runtimes, handler)
	}

	var imports []string
	entries, _ := dump["imports"].([]any)
	for _, entry := range entries {
		imports = append(imports, fmt.Sprint(entry))
	}
	delete(dump, "imports")
	return imports
}

// changedKeys returns the dotted keys whose values differ between two dumps, with both values.
func changedKeys(prefix string, before, after map[string]any) []string {
	var changes []string
	for key, old := range before {
		name := strings.TrimPrefix(prefix+"."+key, ".")
		new, ok := after[key]
		oldMap, oldIsMap := old.(map[string]any)
		newMap, newIsMap := new.(map[string]any)
		switch {
		case !ok:
			changes = append(changes, fmt.Sprintf("%s = %v is gone", name, old))
		case oldIsMap && newIsMap:
			changes = append(changes, changedKeys(name, oldMap, newMap)...)
		case !reflect.DeepEqual(old, new):
			changes = append(changes, fmt.Sprintf("%s = %v became %v", name, old, new))
		}
	}
	for key, new := range after {
		if _, ok := before[key]; !ok {
			changes = append(changes, fmt.Sprintf("%s = %v is new", strings.TrimPrefix(prefix+"."+key, "."), new))
		}
	}
	return changes
}

// caseConfigDir returns the folder of containerd's config in a case, and where it is on
// the node: the case itself for /etc/containerd, or the k3s or rke2 folder of a case that
// holds a tree from the host's /.
func caseConfigDir(t *testing.T, caseDir string) (string, string) {
	t.Helper()
	for _, pattern := range []string{"var/lib/rancher/*/agent/etc/containerd/config.toml", "etc/k0s/containerd.toml"} {
		configs, err := filepath.Glob(filepath.Join(caseDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		if len(configs) > 0 {
			dir := filepath.Dir(configs[0])
			return dir, strings.TrimPrefix(dir, caseDir)
		}
	}
	// microk8s's template names no path of its own folder, and /var/snap is not
	// a tmpfs in the dump's namespace, so it is shown at /etc/containerd.
	if dir := filepath.Join(caseDir, microk8sArgs); isDir(dir) {
		return dir, "/etc/containerd"
	}
	return caseDir, "/etc/containerd"
}

// microk8sArgs is microk8s's folder of containerd's template.
const microk8sArgs = "var/snap/microk8s/current/args"

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// rendered returns dir when it has no k3s or rke2 template, and otherwise a copy whose
// config.toml is the template rendered roughly as k3s renders it. The base include is
// replaced by the rendered config, and the lines of other template actions are left out.
func rendered(t *testing.T, dir, binary string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "containerd.toml")); err == nil {
		return renderedK0s(t, dir, binary)
	}
	if _, err := os.Stat(filepath.Join(dir, "containerd-template.toml")); err == nil {
		return renderedMicrok8s(t, dir)
	}
	template, err := os.ReadFile(filepath.Join(dir, "config-v3.toml.tmpl"))
	if os.IsNotExist(err) {
		return dir
	}
	base, err := os.ReadFile(filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	for _, line := range strings.SplitAfter(string(template), "\n") {
		switch trimmed := strings.TrimSpace(line); {
		case trimmed == `{{ template "base" . }}`:
			out.Write(base)
		case strings.HasPrefix(trimmed, "{{"):
		default:
			out.WriteString(line)
		}
	}

	return withConfig(t, dir, out.String())
}

// renderedK0s returns a copy of a k0s config folder as k0s runs it. The default CRI
// config of binary, when set, and the drop-ins of containerd.d are merged key by key into
// one file, which config.toml imports in place of the file k0s writes. containerd 1.x
// itself would let each drop-in's CRI table replace the one before.
func renderedK0s(t *testing.T, dir, binary string) string {
	t.Helper()
	root, err := os.ReadFile(filepath.Join(dir, "containerd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dropIns, err := filepath.Glob(filepath.Join(dir, "containerd.d", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}

	merged := map[string]any{}
	if binary != "" {
		merged = defaultCRIConfig(t, binary)
	}
	for _, path := range dropIns {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var dropIn map[string]any
		if err := toml.Unmarshal(data, &dropIn); err != nil {
			t.Fatalf("drop-in %s: %v", path, err)
		}
		mergeTables(merged, dropIn)
	}
	data, err := toml.Marshal(merged)
	if err != nil {
		t.Fatal(err)
	}

	copied := withConfig(t, dir, strings.Replace(string(root), `"/run/k0s/containerd-cri.toml"`, `"/etc/k0s/k0s-cri.toml"`, 1))
	if err := os.WriteFile(filepath.Join(copied, "k0s-cri.toml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return copied
}

// defaultCRIConfig returns the config of `containerd config default` with only the CRI
// plugin's table, which k0s starts its merge from.
func defaultCRIConfig(t *testing.T, binary string) map[string]any {
	t.Helper()
	out, err := exec.Command(binary, "config", "default").Output()
	if err != nil {
		t.Fatalf("%s config default: %v", binary, err)
	}
	var config map[string]any
	if err := toml.Unmarshal(out, &config); err != nil {
		t.Fatal(err)
	}
	plugins, _ := config["plugins"].(map[string]any)
	const cri = "io.containerd.grpc.v1.cri"
	return map[string]any{"version": config["version"], "plugins": map[string]any{cri: plugins[cri]}}
}

// mergeTables merges src into dst, table by table.
func mergeTables(dst, src map[string]any) {
	for key, value := range src {
		table, isTable := value.(map[string]any)
		existing, hasTable := dst[key].(map[string]any)
		if isTable && hasTable {
			mergeTables(existing, table)
			continue
		}
		dst[key] = value
	}
}

// renderedMicrok8s returns a copy of microk8s's args folder whose config.toml is the
// template with its variables replaced, as microk8s does at every start.
func renderedMicrok8s(t *testing.T, dir string) string {
	t.Helper()
	template, err := os.ReadFile(filepath.Join(dir, "containerd-template.toml"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{
		"SNAP": "/snap/microk8s/current", "SNAP_DATA": "/var/snap/microk8s/current",
		"SNAP_COMMON": "/var/snap/microk8s/common", "SNAPSHOTTER": "overlayfs", "RUNTIME": "runc",
	}
	return withConfig(t, dir, os.Expand(string(template), func(name string) string { return values[name] }))
}

// withConfig returns a copy of dir whose config.toml contains config.
func withConfig(t *testing.T, dir, config string) string {
	t.Helper()
	copied := t.TempDir()
	if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copied, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return copied
}
