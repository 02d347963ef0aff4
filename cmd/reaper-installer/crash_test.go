package main

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// runMainEnv makes the test binary run the installer's main, for the crash tests.
const runMainEnv = "REAPER_INSTALLER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashPoints are the steps of an install into a root config without imports: each
// binary, the shim link, the drop-in and the root config, before and after the rename.
var crashPoints = []string{
	"containerd-shim-reaper-v2:written", "containerd-shim-reaper-v2:renamed",
	"reaper-runtime:written", "reaper-init:renamed",
	"containerd-shim-reaper-v2:linked",
	"reaper.toml:written", "reaper.toml:renamed",
	"config.toml:written", "config.toml:renamed",
}

// TestInstallConvergesAfterCrash kills the installer at each step of an install. The
// config containerd would read must be whole at that moment. The next install must end
// where an install without a crash ends, with no temporary file left.
func TestInstallConvergesAfterCrash(t *testing.T) {
	reference := crashHost(t)
	if out, err := reference.install(""); err != nil {
		t.Fatalf("install without a crash failed: %v\n%s", err, out)
	}
	want := reference.tree(t)

	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			host := crashHost(t)
			out, err := host.install(point)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 137 {
				t.Fatalf("the install did not crash at %s (%v):\n%s", point, err, out)
			}
			host.assertConfigWhole(t)

			if out, err := host.install(""); err != nil {
				t.Fatalf("the install after the crash failed: %v\n%s", err, out)
			}
			got := host.tree(t)
			for name, content := range want {
				if got[name] != content {
					t.Errorf("after the crash at %s and a second install, %s is %q, want %q", point, name, got[name], content)
				}
			}
			for name := range got {
				if _, ok := want[name]; !ok {
					t.Errorf("after the crash at %s and a second install, %s is left over", point, name)
				}
			}
		})
	}
}

// crashNode is a host root with a version 3 config without imports.
type crashNode struct {
	root   string
	source string
}

func crashHost(t *testing.T) crashNode {
	t.Helper()
	root := t.TempDir()
	config := filepath.Join(root, "etc/containerd/config.toml")
	if err := os.MkdirAll(filepath.Dir(config), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, []byte("version = 3\n\n[grpc]\n  address = '/run/containerd/containerd.sock'\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	source := t.TempDir()
	for _, name := range []string{"containerd-shim-reaper-v2", "reaper-runtime", "reaper-init"} {
		if err := os.WriteFile(filepath.Join(source, name), []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return crashNode{root: root, source: source}
}

// install runs the installer's main in a child process that exits at crashAt, if set.
func (n crashNode) install(crashAt string) ([]byte, error) {
	cmd := exec.Command(os.Args[0], "install", "--host-root", n.root, "--source-dir", n.source,
		"--install-dir", "/opt/reaper/bin", "--link-dir", "/usr/local/bin", "--lock-file", "/run/reaper/installer.lock", "--restart", "none")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "REAPER_INSTALLER_TEST_CRASH_AT="+crashAt)
	return cmd.CombinedOutput()
}

// assertConfigWhole fails unless the root config and the drop-in, where there is one,
// parse: containerd never reads a half-written file.
func (n crashNode) assertConfigWhole(t *testing.T) {
	t.Helper()
	for _, path := range []string{"etc/containerd/config.toml", "etc/containerd/conf.d/reaper.toml"} {
		data, err := os.ReadFile(filepath.Join(n.root, path))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var parsed map[string]any
		if err := toml.Unmarshal(data, &parsed); err != nil {
			t.Errorf("%s does not parse after the crash: %v\n%s", path, err, data)
		}
	}
}

// tree returns every file and link below the host root, by path, with its content or
// link target; the installer lock file is left out.
func (n crashNode) tree(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(n.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "installer.lock" {
			return err
		}
		rel, err := filepath.Rel(n.root, path)
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(path)
			files[rel] = "-> " + target
			return err
		}
		data, err := os.ReadFile(path)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
