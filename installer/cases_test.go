package installer

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestCases")

// caseErrors are the cases whose install must fail, with what the error must contain.
var caseErrors = map[string][]string{
	"c08-manual-install-from-old-docs": {"already defines", `runtimes.reaper`, MigrateFlag, "remove that table"},
	"c09-invalid-toml":                 {"/etc/containerd/config.toml", "line 10, column"},
}

// caseMigrations are the cases of caseErrors that install with MigrateForeignHandlers.
// Their uninstall leaves the config without the foreign tables, and the original in its
// backup.
var caseMigrations = map[string]bool{"c08-manual-install-from-old-docs": true}

// TestCases installs into each node configuration of testdata/cases below a host root,
// and checks the result against testdata/golden, a second install, and the uninstall.
func TestCases(t *testing.T) {
	cases, err := os.ReadDir("testdata/cases")
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) { runCase(t, c.Name()) })
	}
}

// runCase installs into the case called name, compares the result with its golden
// folder, installs again, and uninstalls.
func runCase(t *testing.T, name string) {
	opts, original := caseHost(t, filepath.Join("testdata/cases", name))
	configDir := opts.onHost(filepath.Dir(opts.ContainerdConfig))
	before := hostPaths(t, opts.HostRoot)

	plan, err := PlanInstall(opts)
	if want, ok := caseErrors[name]; ok {
		assertCaseError(t, err, want)
		assertSameTree(t, original, configDir)
		if !caseMigrations[name] {
			return
		}
		opts.MigrateForeignHandlers = true
		plan, err = PlanInstall(opts)
	}
	if err != nil {
		t.Fatalf("PlanInstall: %v", err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	compareGolden(t, filepath.Join("testdata/golden", name), configDir)

	again, err := PlanInstall(opts)
	if err != nil {
		t.Fatalf("second PlanInstall: %v", err)
	}
	if changed, err := again.Apply(discardLogger()); err != nil || changed {
		t.Errorf("a second install changed = %v (%v), want no change", changed, err)
	}

	uninstall, err := PlanUninstall(opts)
	if err != nil {
		t.Fatalf("PlanUninstall: %v", err)
	}
	if _, err := uninstall.Apply(discardLogger()); err != nil {
		t.Fatalf("uninstall Apply: %v", err)
	}
	if caseMigrations[name] {
		assertMigrated(t, original, configDir)
		return
	}
	assertSameTree(t, original, configDir)
	if after := hostPaths(t, opts.HostRoot); !slices.Equal(after, before) {
		t.Errorf("after the uninstall the host has %q, want what it had before the install, %q", after, before)
	}
}

// hostPaths returns every file and folder below root, as sorted relative paths.
func hostPaths(t *testing.T, root string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, path)
		paths = append(paths, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	return paths
}

// assertMigrated checks the config of a migrated case after its uninstall: the backup
// contains the original, and the config no longer defines the foreign handler.
func assertMigrated(t *testing.T, original, dir string) {
	t.Helper()
	want := readTree(t, original)["config.toml"]
	got := readTree(t, dir)
	if got["config.toml.reaper-backup"] != want {
		t.Errorf("config.toml.reaper-backup is %q, want the original %q", got["config.toml.reaper-backup"], want)
	}
	cfg, err := parseContainerdConfig("config.toml", []byte(got["config.toml"]))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := definedHandlers("config.toml", []byte(got["config.toml"]), cfg.Version, []string{DefaultHandler})
	if err != nil || len(foreign) > 0 {
		t.Errorf("after uninstall the config still defines %v (%v):\n%s", foreign, err, got["config.toml"])
	}
}

// caseHost copies a case into a new host root, with binaries to install, and returns the
// installer options for that host, with the distribution it detects, and the case's
// folder of containerd's config. A case is a node's /etc/containerd, or a tree from the
// host's / when it holds var/ or etc/.
func caseHost(t *testing.T, caseDir string) (Options, string) {
	t.Helper()
	root := t.TempDir()
	hostTree := false
	for _, dir := range []string{"var", "etc"} {
		if _, err := os.Stat(filepath.Join(caseDir, dir)); err == nil {
			hostTree = true
		}
	}
	target := filepath.Join(root, "etc/containerd")
	if hostTree {
		target = root
	}
	if err := os.CopyFS(target, os.DirFS(caseDir)); err != nil {
		t.Fatal(err)
	}
	distro := DetectDistro(root)
	original := caseDir
	if hostTree {
		original = filepath.Join(caseDir, filepath.Dir(distro.Config))
	}

	source := t.TempDir()
	for _, name := range Binaries {
		if err := os.WriteFile(filepath.Join(source, name), []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{
		HostRoot:          root,
		ContainerdConfig:  distro.Config,
		Templates:         distro.Templates,
		DropInDir:         distro.DropInDir,
		InstallDir:        "/opt/reaper/bin",
		SourceDir:         source,
		ProtectedHandlers: []string{DefaultProtectedHandler},
	}

	// The case's runc options give the cgroup driver, as no kubelet runs.
	cfg, _ := opts.readConfig()
	driver, err := DetectCgroupDriver(opts, t.TempDir(), "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts.CgroupDriver = driver.Driver
	return opts, original
}

func assertCaseError(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("PlanInstall succeeded, want an error containing %q", want)
	}
	for _, part := range want {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("PlanInstall error %q does not contain %q", err, part)
		}
	}
}

// compareGolden compares every file below dir with the golden folder, or rewrites the
// golden folder with -update.
func compareGolden(t *testing.T, golden, dir string) {
	t.Helper()
	got := readTree(t, dir)
	if *update {
		if err := os.RemoveAll(golden); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(golden, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		return
	}

	want := readTree(t, golden)
	for name, content := range want {
		if got[name] != content {
			t.Errorf("%s after install:\n%s\nwant (testdata/golden; -update rewrites it):\n%s", name, got[name], content)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("install wrote %s, which the golden folder %s does not have", name, golden)
		}
	}
}

// assertSameTree fails unless dir holds every file of original with the same bytes. The
// backup that the first edit of a root config keeps, and empty folders, may remain.
func assertSameTree(t *testing.T, original, dir string) {
	t.Helper()
	want, got := readTree(t, original), readTree(t, dir)
	for name, content := range want {
		if got[name] != content {
			t.Errorf("%s is %q, want the original %q", name, got[name], content)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is left over", name)
		}
	}
}

// readTree returns the content of every regular file below dir, by relative path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
