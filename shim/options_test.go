package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"reaper.dev/reaper/runtime/initproc"
)

func TestParseOptions(t *testing.T) {
	body := []byte("Protected = true\nProtectedRoot = \"read-only\"\nMaskedPaths = [\"/etc/secret\"]\n")
	opts := mustParse(t, &runtimeoptions.Options{ConfigBody: body})

	p := opts.protection()
	if p == nil || p.Root != initproc.RootReadOnly {
		t.Fatalf("protection() = %+v, want a read-only root", p)
	}
	if got := p.MaskedPaths; got[0] != "/etc/shadow" || got[len(got)-1] != "/etc/secret" {
		t.Errorf("MaskedPaths = %v, want the defaults followed by /etc/secret", got)
	}
}

func TestParseOptionsFromConfigPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reaper.toml")
	if err := os.WriteFile(path, []byte("Protected = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	opts := mustParse(t, &runtimeoptions.Options{ConfigPath: path})
	if p := opts.protection(); p == nil || p.Root != initproc.RootOverlay {
		t.Errorf("protection() = %+v, want the overlay root by default", p)
	}
}

func TestParseOptionsWithoutOptions(t *testing.T) {
	opts, err := parseOptions(nil)
	if err != nil || opts.protection() != nil {
		t.Errorf("parseOptions(nil) = %+v, %v; want no protection", opts, err)
	}
}

func TestParseOptionsErrors(t *testing.T) {
	tests := map[string]string{
		"Protectd = true\n":                                "unknown keys Protectd",
		"Protected = true\nProtectedRoot = \"tmpfs\"\n":    `invalid ProtectedRoot "tmpfs"`,
		"Protected = \"yes\"\n":                            "invalid runtime options",
		"TypeUrl = \"x\"\nConfigBody = \"y\"\nBogus = 1\n": "unknown keys ConfigBody, Bogus",
	}

	for body, want := range tests {
		value, err := typeurl.MarshalAny(&runtimeoptions.Options{ConfigBody: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseOptions(value); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseOptions(%q) error = %v, want one containing %q", body, err, want)
		}
	}
}

func mustParse(t *testing.T, raw *runtimeoptions.Options) options {
	t.Helper()
	value, err := typeurl.MarshalAny(raw)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := parseOptions(value)
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

func TestCheckCgroupDriver(t *testing.T) {
	systemd := mustParse(t, &runtimeoptions.Options{ConfigBody: []byte("SystemdCgroup = true\n")})
	cgroupfs := mustParse(t, &runtimeoptions.Options{ConfigBody: []byte("")})
	slicePath := "kubepods-besteffort-pod1.slice:cri-containerd:abc"
	plainPath := "/kubepods/besteffort/pod1/abc"

	tests := []struct {
		name    string
		opts    options
		path    string
		wantErr bool
	}{
		{"systemd handler, systemd path", systemd, slicePath, false},
		{"systemd handler, cgroupfs path", systemd, plainPath, true},
		{"systemd handler, no cgroup", systemd, "", false},
		{"default handler, cgroupfs path", cgroupfs, plainPath, false},
		{"default handler, systemd path", cgroupfs, slicePath, false},
	}
	for _, tt := range tests {
		spec := &specs.Spec{Linux: &specs.Linux{CgroupsPath: tt.path}}
		err := tt.opts.checkCgroupDriver(spec)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: checkCgroupDriver() = %v, want error %t", tt.name, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), plainPath) {
			t.Errorf("%s: error %q does not name the cgroupsPath", tt.name, err)
		}
	}
}
