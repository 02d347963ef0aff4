package initproc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tool"), 0o755)
	writeFile(t, filepath.Join(dir, "data"), 0o644)
	if err := os.Mkdir(filepath.Join(dir, "folder"), 0o755); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		file    string
		env     []string
		want    string
		wantErr string
	}{
		{name: "found in spec PATH", file: "tool", env: []string{"PATH=/nonexistent:" + dir}, want: filepath.Join(dir, "tool")},
		{name: "last PATH wins", file: "tool", env: []string{"PATH=/nonexistent", "PATH=" + dir}, want: filepath.Join(dir, "tool")},
		{name: "absolute path", file: filepath.Join(dir, "tool"), want: filepath.Join(dir, "tool")},
		{name: "relative to cwd", file: "./tool", want: "./tool"},
		{name: "missing name", file: "no-such-command-xyz", env: []string{"PATH=" + dir}, wantErr: `exec "no-such-command-xyz": executable file not found in $PATH`},
		{name: "missing absolute", file: "/nonexistent/binary", wantErr: `exec "/nonexistent/binary": no such file on the host`},
		{name: "not executable", file: filepath.Join(dir, "data"), wantErr: "not executable"},
		{name: "directory", file: filepath.Join(dir, "folder"), wantErr: "is a directory"},
		{name: "empty", file: "", wantErr: "args[0] is empty"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LookPath(tc.file, tc.env, dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LookPath(%q) error = %v, want one containing %q", tc.file, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LookPath(%q) failed: %v", tc.file, err)
			}
			if got != tc.want {
				t.Errorf("LookPath(%q) = %q, want %q", tc.file, got, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestLookPathDefaultPath(t *testing.T) {
	got, err := LookPath("sh", []string{"HOME=/"}, "/")
	if err != nil {
		t.Fatalf("LookPath(sh) without PATH failed: %v", err)
	}

	if !slices.Contains(filepath.SplitList(DefaultPath), filepath.Dir(got)) {
		t.Errorf("LookPath(sh) = %q, want a folder of DefaultPath %s", got, DefaultPath)
	}
}
