package initproc

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestResolvePath(t *testing.T) {
	root := t.TempDir()
	mustMkdir(t, filepath.Join(root, "run/user"))
	mustMkdir(t, filepath.Join(root, "etc"))
	mustWrite(t, filepath.Join(root, "etc/hosts"))
	mustSymlink(t, "../run", filepath.Join(root, "var-run"))
	mustSymlink(t, "/run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
	mustSymlink(t, "loop", filepath.Join(root, "loop"))

	tests := []struct {
		path     string
		existing string
		missing  []string
		err      string
	}{
		{path: "/etc/hosts", existing: "/etc/hosts"},
		{path: "/etc/./hosts", existing: "/etc/hosts"},
		{path: "/", existing: "/"},
		{path: "/var-run/secrets/kubernetes.io/serviceaccount", existing: "/run", missing: []string{"secrets", "kubernetes.io", "serviceaccount"}},
		{path: "/etc/resolv.conf", existing: "/run", missing: []string{"systemd", "resolve", "stub-resolv.conf"}},
		{path: "/data", existing: "/", missing: []string{"data"}},
		{path: "/../../run/user", existing: "/run/user"},
		{path: "/etc/hosts/x", err: "/etc/hosts is not a directory"},
		{path: "/loop/x", err: "more than 40 symlinks"},
		{path: "/new/../etc", err: `".." follows /new`},
	}

	for _, tt := range tests {
		existing, missing, err := resolvePath(root, tt.path)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("resolvePath(%q) error = %v, want one containing %q", tt.path, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolvePath(%q): %v", tt.path, err)
			continue
		}
		if existing != tt.existing || !reflect.DeepEqual(missing, tt.missing) {
			t.Errorf("resolvePath(%q) = %q, %q; want %q, %q", tt.path, existing, missing, tt.existing, tt.missing)
		}
	}
}

func mustMkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
