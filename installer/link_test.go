package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallLinksShim(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	host.opts.LinkDir = t.TempDir()
	link := filepath.Join(host.opts.LinkDir, ShimBinary)
	target := filepath.Join(host.opts.InstallDir, ShimBinary)

	for round := 1; round <= 2; round++ {
		plan, err := PlanInstall(host.opts)
		if err != nil {
			t.Fatalf("PlanInstall() round %d error: %v", round, err)
		}
		if _, err := plan.Apply(discardLogger()); err != nil {
			t.Fatalf("Apply() round %d error: %v", round, err)
		}
		if got, err := os.Readlink(link); err != nil || got != target {
			t.Errorf("round %d: link %s points to %q (%v), want %s", round, link, got, err, target)
		}
	}

	plan, err := PlanUninstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}
	assertNotExist(t, link)
}

func TestInstallKeepsForeignShimFile(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	host.opts.LinkDir = t.TempDir()
	foreign := filepath.Join(host.opts.LinkDir, ShimBinary)
	if err := os.WriteFile(foreign, []byte("another shim"), 0o755); err != nil {
		t.Fatal(err)
	}

	_, err := PlanInstall(host.opts)
	if err == nil || !strings.Contains(err.Error(), "is not a link") {
		t.Fatalf("PlanInstall() error = %v, want one that names the foreign file", err)
	}
	assertContent(t, foreign, []byte("another shim"))
	assertNotExist(t, host.opts.InstallDir)
}

func TestUninstallKeepsOtherLink(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	host.opts.LinkDir = t.TempDir()
	link := filepath.Join(host.opts.LinkDir, ShimBinary)
	if err := os.Symlink("/somewhere/else", link); err != nil {
		t.Fatal(err)
	}

	plan, err := PlanUninstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(link); err != nil || got != "/somewhere/else" {
		t.Errorf("uninstall changed a link it did not make: %q, %v", got, err)
	}
}
