package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func TestInstallAddsImport(t *testing.T) {
	configs := map[string]string{
		"LF":                "# Managed by the node image.\nversion = 3 # schema\n\n[plugins]\n  [plugins.'io.containerd.cri.v1.runtime'.cni]\n    bin_dirs = ['/home/kubernetes/bin']\n",
		"CRLF":              "version = 3\r\n\r\n[metrics]\r\n  address = '127.0.0.1:1338'\r\n",
		"no final newline":  "version = 3",
		"version in a text": "# version = 2 was here\n[plugins.x]\n  note = \"version = 9\"\n",
	}

	for name, original := range configs {
		t.Run(name, func(t *testing.T) {
			host := newTestHost(t, "")
			if err := os.WriteFile(host.configPath, []byte(original), 0o600); err != nil {
				t.Fatal(err)
			}
			dropIn := filepath.Join(filepath.Dir(host.configPath), DefaultDropInDir, DropInName)

			plan, err := PlanInstall(host.opts)
			if name == "version in a text" {
				// No version key is version 1, whose handlers go into the root block.
				if err != nil || plan.RootBlock == nil || !strings.Contains(string(plan.RootBlock), `[plugins."cri".containerd.runtimes.reaper]`) {
					t.Fatalf("PlanInstall() = %v, %v; want a version 1 root block", plan, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := plan.Apply(discardLogger()); err != nil {
				t.Fatal(err)
			}

			edited := readFile(t, host.configPath)
			assertOnlyImportAdded(t, original, edited, filepath.Dir(dropIn))
			if _, err := os.Stat(dropIn); err != nil {
				t.Errorf("the drop-in was not written: %v", err)
			}

			again, err := PlanInstall(host.opts)
			if err != nil {
				t.Fatal(err)
			}
			if changed, err := again.Apply(discardLogger()); err != nil || changed {
				t.Errorf("a second install changed = %v (%v), want no change", changed, err)
			}

			uninstall, err := PlanUninstall(host.opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := uninstall.Apply(discardLogger()); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, host.configPath); got != original {
				t.Errorf("uninstall left\n%q\nwant the original\n%q", got, original)
			}
			assertNotExist(t, dropIn)
		})
	}
}

// assertOnlyImportAdded checks that edited is original with one imports line of dir added,
// and that it parses with that import.
func assertOnlyImportAdded(t *testing.T, original, edited, dir string) {
	t.Helper()
	stripped, found := withoutImport([]byte(edited))
	if !found || string(stripped) != original {
		t.Errorf("the root config is\n%q\nwant the original\n%q\nwith one imports line", edited, original)
	}

	var parsed struct {
		Imports []string `toml:"imports"`
	}
	if err := toml.Unmarshal([]byte(edited), &parsed); err != nil {
		t.Fatalf("the edited root config does not parse: %v", err)
	}
	if want := filepath.Join(dir, "*.toml"); len(parsed.Imports) != 1 || parsed.Imports[0] != want {
		t.Errorf("imports = %q, want [%q]", parsed.Imports, want)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestInstallUnderHostRoot(t *testing.T) {
	root := t.TempDir()
	config := filepath.Join(root, "etc/containerd/config.toml")
	if err := os.MkdirAll(filepath.Dir(config), 0o755); err != nil {
		t.Fatal(err)
	}
	original := "version = 3\n"
	if err := os.WriteFile(config, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	source := t.TempDir()
	for _, name := range Binaries {
		if err := os.WriteFile(filepath.Join(source, name), []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{
		HostRoot:         root,
		ContainerdConfig: "/etc/containerd/config.toml",
		InstallDir:       "/opt/reaper/bin",
		SourceDir:        source,
		LinkDir:          "/usr/local/bin",
	}

	plan, err := PlanInstall(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}

	// Files land below the host root; the paths written into them are the host's.
	assertOnlyImportAdded(t, original, readFile(t, config), "/etc/containerd/conf.d")
	dropIn := readFile(t, filepath.Join(root, "etc/containerd/conf.d", DropInName))
	if !strings.Contains(dropIn, "runtime_path = '/opt/reaper/bin/containerd-shim-reaper-v2'") {
		t.Errorf("the drop-in does not point at the shim's host path:\n%s", dropIn)
	}
	if _, err := os.Stat(filepath.Join(root, "opt/reaper/bin", ShimBinary)); err != nil {
		t.Errorf("the shim is not installed below the host root: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(root, "usr/local/bin", ShimBinary)); err != nil || target != "/opt/reaper/bin/"+ShimBinary {
		t.Errorf("the shim link points at %q (%v), want the shim's host path", target, err)
	}

	uninstall, err := PlanUninstall(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uninstall.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, config); got != original {
		t.Errorf("uninstall left %q, want %q", got, original)
	}
	assertNotExist(t, filepath.Join(root, "opt/reaper/bin", ShimBinary))
	assertNotExist(t, filepath.Join(root, "usr/local/bin", ShimBinary))
}
