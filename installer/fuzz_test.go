package installer

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// FuzzInstall installs into root configs made by the fuzzer. Whenever the install
// succeeds, the edited config must parse, differ from the original only in what Reaper
// owns (its handler tables and its imports entry), and come back byte for byte on
// uninstall. Run it with `go test -fuzz=FuzzInstall ./installer`; plain `go test` runs
// the seeds, the configs of testdata/cases among them.
func FuzzInstall(f *testing.F) {
	cases, err := filepath.Glob("testdata/cases/*/config.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range cases {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("version = 3\r\n# a comment\r\n[a]\r\nb = 'c'"))
	f.Add([]byte("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n"))

	f.Fuzz(func(t *testing.T, original []byte) {
		var parsed map[string]any
		if toml.Unmarshal(original, &parsed) != nil {
			return
		}

		opts := caseHostConfig(t, original)
		plan, err := PlanInstall(opts)
		if err != nil {
			return
		}
		if _, err := plan.Apply(discardLogger()); err != nil {
			t.Fatalf("Apply after a successful plan: %v", err)
		}

		edited, err := os.ReadFile(opts.onHost(opts.ContainerdConfig))
		if err != nil {
			t.Fatal(err)
		}
		assertOnlyReaperKeys(t, parsed, edited)

		uninstall, err := PlanUninstall(opts)
		if err != nil {
			t.Fatalf("PlanUninstall: %v", err)
		}
		if _, err := uninstall.Apply(discardLogger()); err != nil {
			t.Fatalf("uninstall Apply: %v", err)
		}
		restored, err := os.ReadFile(opts.onHost(opts.ContainerdConfig))
		if err != nil || string(restored) != string(original) {
			t.Fatalf("uninstall left %q (%v), want the original %q", restored, err, original)
		}
	})
}

// caseHostConfig makes a host root whose /etc/containerd/config.toml holds content.
func caseHostConfig(t *testing.T, content []byte) Options {
	t.Helper()
	root := t.TempDir()
	path := filepath.Join(root, "etc/containerd/config.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}

	source := t.TempDir()
	for _, name := range Binaries {
		if err := os.WriteFile(filepath.Join(source, name), []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Options{HostRoot: root, ContainerdConfig: "/etc/containerd/config.toml", InstallDir: "/opt/reaper/bin", SourceDir: source}
}

// assertOnlyReaperKeys fails unless edited parses to original plus Reaper's handler
// tables and imports entry.
func assertOnlyReaperKeys(t *testing.T, original map[string]any, edited []byte) {
	t.Helper()
	var got map[string]any
	if err := toml.Unmarshal(edited, &got); err != nil {
		t.Fatalf("the edited config does not parse: %v\n%s", err, edited)
	}

	if _, had := original["imports"]; !had {
		delete(got, "imports")
	}
	plugins, _ := got["plugins"].(map[string]any)
	for _, id := range []string{"cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"} {
		cri, _ := plugins[id].(map[string]any)
		containerd, _ := cri["containerd"].(map[string]any)
		runtimes, _ := containerd["runtimes"].(map[string]any)
		delete(runtimes, DefaultHandler)
		pruneEmpty(plugins, id, cri, containerd, runtimes, original)
	}
	if _, had := original["plugins"]; !had && len(plugins) == 0 {
		delete(got, "plugins")
	}

	if !reflect.DeepEqual(got, original) {
		t.Fatalf("the edit changed more than Reaper's keys:\noriginal %v\nedited   %v\n%s", original, got, edited)
	}
}

// pruneEmpty drops the tables that only held Reaper's handler, unless the original
// had them.
func pruneEmpty(plugins map[string]any, id string, cri, containerd, runtimes map[string]any, original map[string]any) {
	origPlugins, _ := original["plugins"].(map[string]any)
	origCRI, _ := origPlugins[id].(map[string]any)
	origContainerd, _ := origCRI["containerd"].(map[string]any)
	if runtimes != nil && len(runtimes) == 0 && origContainerd["runtimes"] == nil {
		delete(containerd, "runtimes")
	}
	if containerd != nil && len(containerd) == 0 && origCRI["containerd"] == nil {
		delete(cri, "containerd")
	}
	if cri != nil && len(cri) == 0 && origPlugins[id] == nil {
		delete(plugins, id)
	}
}
