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
				if err == nil || !strings.Contains(err.Error(), "no top-level version key") {
					t.Fatalf("PlanInstall() error = %v, want one about the missing version key", err)
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
