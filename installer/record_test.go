package installer

import (
	"os"
	"strings"
	"testing"
)

// TestRecordReportsAndRepairsDrift installs, lets a config manager put back the root
// config without Reaper's import, and checks that status reports it and that the next
// install repairs it.
func TestRecordReportsAndRepairsDrift(t *testing.T) {
	original := []byte("version = 3\n[grpc]\n  address = '/run/containerd/containerd.sock'\n")
	opts := caseHostConfig(t, original)
	install(t, opts)

	status, err := ReadStatus(opts)
	if err != nil {
		t.Fatal(err)
	}
	if status.Record == "" || len(status.Drift) != 0 {
		t.Fatalf("after the install: record %q, drift %q; want a record and no drift", status.Record, status.Drift)
	}

	if err := os.WriteFile(opts.onHost(opts.ContainerdConfig), original, 0o644); err != nil {
		t.Fatal(err)
	}
	status, err = ReadStatus(opts)
	if err != nil {
		t.Fatal(err)
	}
	drift := strings.Join(status.Drift, "\n")
	for _, want := range []string{"containerd config /etc/containerd/config.toml changed", "no longer registers the runtime handler reaper"} {
		if !strings.Contains(drift, want) {
			t.Errorf("drift %q does not contain %q", drift, want)
		}
	}

	install(t, opts)
	status, err = ReadStatus(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(status.Drift) != 0 || !status.RootImport {
		t.Errorf("after the repair: drift %q, imports line %t; want no drift and the line", status.Drift, status.RootImport)
	}
}

// TestUninstallFollowsTheRecord installs into a config at a path of its own and
// uninstalls with the default path: the record leads the uninstall to the right file.
func TestUninstallFollowsTheRecord(t *testing.T) {
	original := []byte("version = 2\n")
	opts := caseHostConfig(t, original)
	custom := "/etc/containerd/custom.toml"
	if err := os.Rename(opts.onHost(opts.ContainerdConfig), opts.onHost(custom)); err != nil {
		t.Fatal(err)
	}
	installOpts := opts
	installOpts.ContainerdConfig = custom
	install(t, installOpts)

	plan, err := PlanUninstall(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(opts.onHost(custom))
	if err != nil || string(got) != string(original) {
		t.Errorf("%s after uninstall is %q (%v), want the original %q", custom, got, err, original)
	}
	assertNotExist(t, opts.onHost(opts.InstallDir))
	assertNotExist(t, opts.onHost(custom)+backupSuffix)
}

func install(t *testing.T, opts Options) {
	t.Helper()
	plan, err := PlanInstall(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}
}

// TestInstallRejectsOtherPaths installs, then installs again with another config, install
// folder or link folder: the second install fails and names the recorded path.
func TestInstallRejectsOtherPaths(t *testing.T) {
	opts := caseHostConfig(t, []byte("version = 3\n"))
	opts.LinkDir = "/usr/local/bin"
	install(t, opts)

	// The install used DefaultInstallDir, where an install into another folder finds the
	// record too.
	changes := map[string]func(*Options){
		"--containerd-config": func(o *Options) { o.ContainerdConfig = "/etc/containerd/other.toml" },
		"--install-dir":       func(o *Options) { o.InstallDir = "/var/lib/reaper/bin" },
		"--link-dir":          func(o *Options) { o.LinkDir = "/usr/bin" },
	}
	for flag, change := range changes {
		other := opts
		change(&other)
		_, err := PlanInstall(other)
		if err == nil {
			t.Errorf("install with another %s succeeded, want an error", flag)
			continue
		}
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("install with another %s: error %q does not name the flag", flag, err)
		}
		if !strings.Contains(err.Error(), "uninstall first") {
			t.Errorf("install with another %s: error %q does not say to uninstall first", flag, err)
		}
	}
}

// TestK0sInstallAgain installs on k0s, lets k0s merge the drop-in into the file its
// generated config imports, and installs again: Reaper's own tables there are no
// foreign handler.
func TestK0sInstallAgain(t *testing.T) {
	opts, _ := caseHost(t, "testdata/cases/c12-k0s-containerd-d")
	install(t, opts)

	dropIn, err := os.ReadFile(opts.onHost("/etc/k0s/containerd.d/" + DropInName))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, opts.onHost("/run/k0s/containerd-cri.toml"), string(dropIn))

	plan, err := PlanInstall(opts)
	if err != nil {
		t.Fatalf("second install on k0s: %v", err)
	}
	if changed, err := plan.Apply(discardLogger()); err != nil || changed {
		t.Errorf("second install changed = %t (%v), want no change", changed, err)
	}
}
