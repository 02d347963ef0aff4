package installer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// testHost is a temporary directory laid out like a node: a containerd config directory, a
// directory with freshly built binaries, and an install directory.
type testHost struct {
	configPath string
	dropInDir  string
	opts       Options
}

func newTestHost(t *testing.T, config string) testHost {
	t.Helper()
	root := t.TempDir()
	configDir := filepath.Join(root, "etc", "containerd")
	sourceDir := filepath.Join(root, "build")
	for _, dir := range []string{configDir, sourceDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range Binaries {
		if err := os.WriteFile(filepath.Join(sourceDir, name), []byte("binary "+name), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	configPath := filepath.Join(configDir, "config.toml")
	if config != "" {
		if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return testHost{
		configPath: configPath,
		dropInDir:  filepath.Join(configDir, "conf.d"),
		opts: Options{
			ContainerdConfig: configPath,
			InstallDir:       filepath.Join(root, "opt", "reaper", "bin"),
			SourceDir:        sourceDir,
		},
	}
}

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// dropIn is the part of a drop-in the tests decode.
type dropIn struct {
	Version int64                     `toml:"version"`
	Plugins map[string]map[string]any `toml:"plugins"`
}

// runtimes decodes the drop-in at path and returns its version and the runtimes table of plugin.
func runtimes(t *testing.T, path, plugin string) (int64, map[string]any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read drop-in: %v", err)
	}
	var d dropIn
	if err := toml.Unmarshal(data, &d); err != nil {
		t.Fatalf("drop-in is not valid TOML: %v\n%s", err, data)
	}
	containerd, _ := d.Plugins[plugin]["containerd"].(map[string]any)
	table, _ := containerd["runtimes"].(map[string]any)
	if table == nil {
		t.Fatalf("drop-in has no plugins.%q.containerd.runtimes table:\n%s", plugin, data)
	}
	return d.Version, table
}

func TestInstallByConfigVersion(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		wantPlugin string
		wantErr    []string
	}{
		{
			name:       "version 3",
			config:     "version = 3\nimports = [\"DROPIN/*.toml\"]\n",
			wantPlugin: "io.containerd.cri.v1.runtime",
		},
		{
			name:       "version 4",
			config:     "version = 4\nimports = [\"DROPIN/*.toml\"]\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\nruntime_type = 'io.containerd.runc.v2'\n",
			wantPlugin: "io.containerd.cri.v1.runtime",
		},
		{
			name:    "version 5",
			config:  "version = 5\nimports = [\"DROPIN/*.toml\"]\n",
			wantErr: []string{"version 5", "supported versions are 1 to 4"},
		},
		{
			name:    "invalid TOML",
			config:  "version = 3\nimports = [\"DROPIN/*.toml\"\nroot = 1\n",
			wantErr: []string{"config.toml: line 3, column 1"},
		},
		{
			name:    "imports without a folder",
			config:  "version = 3\nimports = [\"/etc/containerd/extra.toml\"]\n",
			wantErr: []string{"none of its imports", "is a directory glob"},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := newTestHost(t, "")
			if tt.config != "" {
				config := strings.ReplaceAll(tt.config, "DROPIN", host.dropInDir)
				if err := os.WriteFile(host.configPath, []byte(config), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			plan, err := PlanInstall(host.opts)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("PlanInstall() succeeded, want an error containing %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				assertNotExist(t, host.dropInDir)
				assertNotExist(t, host.opts.InstallDir)
				return
			}
			if err != nil {
				t.Fatalf("PlanInstall() error: %v", err)
			}

			changed, err := plan.Apply(discardLogger())
			if err != nil {
				t.Fatalf("Apply() error: %v", err)
			}
			if !changed {
				t.Error("first Apply() reported no change")
			}

			dropInPath := filepath.Join(host.dropInDir, DropInName)
			version, table := runtimes(t, dropInPath, tt.wantPlugin)
			if version != plan.Config.Version {
				t.Errorf("drop-in version = %d, want the root's %d", version, plan.Config.Version)
			}
			want := map[string]any{
				"runtime_type": RuntimeType,
				"runtime_path": filepath.Join(host.opts.InstallDir, ShimBinary),
			}
			if got := fmt.Sprint(table[DefaultHandler]); got != fmt.Sprint(want) {
				t.Errorf("runtimes.reaper = %s, want %s", got, fmt.Sprint(want))
			}
			if len(table) != 1 {
				t.Errorf("runtimes has %d handlers, want only %s: %v", len(table), DefaultHandler, table)
			}
			assertMode(t, dropInPath, 0o644)
		})
	}
}

func TestInstallCopiesBinaries(t *testing.T) {
	host := newTestHost(t, "version = 2\nimports = [\"conf.d/*.toml\"]\n")
	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}

	for _, name := range Binaries {
		target := filepath.Join(host.opts.InstallDir, name)
		got, err := os.ReadFile(target)
		if err != nil {
			t.Fatalf("read installed binary: %v", err)
		}
		if string(got) != "binary "+name {
			t.Errorf("%s content = %q, want the source's", target, got)
		}
		assertMode(t, target, 0o755)
	}
	assertNoTempFiles(t, host.opts.InstallDir)
	assertNoTempFiles(t, host.dropInDir)
}

func TestInstallTwiceChangesNothing(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	for i, wantChanged := range []bool{true, false} {
		plan, err := PlanInstall(host.opts)
		if err != nil {
			t.Fatal(err)
		}
		changed, err := plan.Apply(discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		if changed != wantChanged {
			t.Errorf("Apply() run %d changed = %v, want %v", i+1, changed, wantChanged)
		}
	}
}

func TestInstallSecondHandler(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	host.opts.Handlers = []string{"reaper", "reaper-protected"}
	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}

	_, table := runtimes(t, filepath.Join(host.dropInDir, DropInName), "io.containerd.cri.v1.runtime")
	for _, handler := range host.opts.Handlers {
		entry, _ := table[handler].(map[string]any)
		if entry["runtime_type"] != RuntimeType {
			t.Errorf("runtimes.%s.runtime_type = %v, want %s", handler, entry["runtime_type"], RuntimeType)
		}
	}
}

func TestInstallRejectsInvalidHandlers(t *testing.T) {
	tests := map[string][]string{
		"uppercase":    {"Reaper"},
		"dot":          {"reaper.v2"},
		"quote":        {`reaper"]`},
		"duplicate":    {"reaper", "reaper"},
		"too long":     {strings.Repeat("a", 64)},
		"leading dash": {"-reaper"},
	}
	for name, handlers := range tests {
		t.Run(name, func(t *testing.T) {
			host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
			host.opts.Handlers = handlers
			if _, err := PlanInstall(host.opts); err == nil {
				t.Errorf("PlanInstall() with handlers %q succeeded, want an error", handlers)
			}
		})
	}
}

func TestInstallRejectsRelativeInstallDir(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	host.opts.InstallDir = "opt/reaper/bin"
	_, err := PlanInstall(host.opts)
	if err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Fatalf("PlanInstall() error = %v, want one about the relative install directory", err)
	}
}

func TestInstallMissingSourceBinary(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	if err := os.Remove(filepath.Join(host.opts.SourceDir, RuntimeBinary)); err != nil {
		t.Fatal(err)
	}
	_, err := PlanInstall(host.opts)
	if err == nil || !strings.Contains(err.Error(), RuntimeBinary+" not found") {
		t.Fatalf("PlanInstall() error = %v, want one naming the missing %s", err, RuntimeBinary)
	}
}

func TestInstallDetectsChangedSource(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host.opts.SourceDir, ShimBinary), []byte("rebuilt"), 0o755); err != nil {
		t.Fatal(err)
	}

	_, err = plan.Apply(discardLogger())
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("Apply() error = %v, want a sha256 mismatch", err)
	}
	assertNotExist(t, filepath.Join(host.opts.InstallDir, ShimBinary))
	assertNotExist(t, filepath.Join(host.dropInDir, DropInName))
	assertNoTempFiles(t, host.opts.InstallDir)
}

func TestInstallKeepsForeignDropIn(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	foreign := []byte("version = 3\n# hand-written\n")
	writeDropIn(t, host, foreign)

	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err == nil || !strings.Contains(err.Error(), "not written by reaper-installer") {
		t.Fatalf("Apply() error = %v, want a refusal to replace the foreign drop-in", err)
	}
	assertContent(t, filepath.Join(host.dropInDir, DropInName), foreign)
}

func TestInstallDescribe(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := plan.Describe(&out); err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{
		"copy " + filepath.Join(host.opts.SourceDir, ShimBinary),
		"--- /dev/null\n+++ " + filepath.Join(host.dropInDir, DropInName) + "\n@@ -0,0 +1,6 @@\n",
		`+[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.reaper]`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Describe() output does not contain %q:\n%s", want, out.String())
		}
	}
	assertNotExist(t, host.dropInDir)
	assertNotExist(t, host.opts.InstallDir)
}

func TestUninstall(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}

	for i, wantChanged := range []bool{true, false} {
		undo, err := PlanUninstall(host.opts)
		if err != nil {
			t.Fatalf("PlanUninstall() run %d error: %v", i+1, err)
		}
		changed, err := undo.Apply(discardLogger())
		if err != nil {
			t.Fatalf("Apply() run %d error: %v", i+1, err)
		}
		if changed != wantChanged {
			t.Errorf("uninstall run %d changed = %v, want %v", i+1, changed, wantChanged)
		}
	}

	assertNotExist(t, filepath.Join(host.dropInDir, DropInName))
	for _, name := range Binaries {
		assertNotExist(t, filepath.Join(host.opts.InstallDir, name))
	}
	assertContent(t, host.configPath, []byte("version = 3\nimports = [\"conf.d/*.toml\"]\n"))
}

func TestUninstallWithoutConfig(t *testing.T) {
	host := newTestHost(t, "")
	plan, err := PlanUninstall(host.opts)
	if err != nil {
		t.Fatalf("PlanUninstall() error: %v", err)
	}
	if plan.DropInPath != "" {
		t.Errorf("DropInPath = %q, want none", plan.DropInPath)
	}
}

func TestUninstallKeepsForeignDropIn(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	foreign := []byte("version = 3\n")
	writeDropIn(t, host, foreign)

	if _, err := PlanUninstall(host.opts); err == nil {
		t.Fatal("PlanUninstall() succeeded, want a refusal to remove the foreign drop-in")
	}
	assertContent(t, filepath.Join(host.dropInDir, DropInName), foreign)
}

func TestParseRestartMethod(t *testing.T) {
	for _, s := range []string{"auto", "systemd", "signal", "none"} {
		if m, err := ParseRestartMethod(s); err != nil || string(m) != s {
			t.Errorf("ParseRestartMethod(%s) = %q, %v", s, m, err)
		}
	}
	if _, err := ParseRestartMethod("sighup"); err == nil || !strings.Contains(err.Error(), `invalid restart method "sighup"`) {
		t.Errorf("ParseRestartMethod(sighup) error = %v, want an invalid-method error", err)
	}
}

func writeDropIn(t *testing.T, host testHost, content []byte) {
	t.Helper()
	if err := os.MkdirAll(host.dropInDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host.dropInDir, DropInName), content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func assertNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (stat error %v), want it absent", path, err)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s mode = %o, want %o", path, got, want)
	}
}

func assertContent(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s content = %q, want %q", path, got, want)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

func TestInstallProtectedRoot(t *testing.T) {
	content, err := RenderDropIn(3, []Handler{{Name: "reaper-protected", Protected: true, ProtectedRoot: "read-only"}}, "/opt/reaper/bin")
	if err != nil {
		t.Fatal(err)
	}
	want := "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.reaper-protected.options]\nProtected = true\nProtectedRoot = \"read-only\"\n"
	if !strings.HasSuffix(string(content), want) {
		t.Errorf("drop-in =\n%s\nwant it to end with\n%s", content, want)
	}

	_, err = RenderDropIn(3, []Handler{{Name: "reaper-protected", Protected: true, ProtectedRoot: "tmpfs"}}, "/opt/reaper/bin")
	if err == nil || !strings.Contains(err.Error(), `invalid protected root "tmpfs"`) {
		t.Errorf("RenderDropIn with protected root tmpfs: error = %v, want one that names the value", err)
	}
}
