package installer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadContainerdConfig(t *testing.T) {
	tests := []struct {
		name        string
		content     string
		wantVersion int64
		wantImports []string
		wantErr     []string
		wantErrIs   error
	}{
		{
			name:        "version 2",
			content:     "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n",
			wantVersion: 2,
			wantImports: []string{"/etc/containerd/conf.d/*.toml"},
		},
		{
			name:        "version 3 with other tables",
			content:     "version = 3\nroot = \"/var/lib/x\"\n\n[plugins.'io.containerd.cri.v1.runtime']\nenable_cdi = true\n",
			wantVersion: 3,
		},
		{
			name:        "version 4",
			content:     "imports = ['a/*.toml', '/b/c.toml']\nversion = 4\n",
			wantVersion: 4,
			wantImports: []string{"a/*.toml", "/b/c.toml"},
		},
		{
			name:        "version mentioned only in a comment and a string",
			content:     "# version = 2\nroot = \"version = 3\"\n",
			wantVersion: 1,
		},
		{
			name:      "invalid TOML",
			content:   "version = 2\n[plugins\nfoo = 1\n",
			wantErr:   []string{"line 2, column 9", "config.toml"},
			wantErrIs: nil,
		},
		{
			name:      "version is a string",
			content:   "version = \"2\"\n",
			wantErr:   []string{`version is 2 (string), expected an integer`},
			wantErrIs: ErrUnsupportedVersion,
		},
		{
			name:    "imports is not a list",
			content: "version = 2\nimports = \"/etc/containerd/conf.d/*.toml\"\n",
			wantErr: []string{"line 2"},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.content)
			cfg, err := ReadContainerdConfig(path)

			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ReadContainerdConfig() = %+v, want an error", cfg)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
					t.Errorf("error %q does not wrap %v", err, tt.wantErrIs)
				}
				return
			}

			if err != nil {
				t.Fatalf("ReadContainerdConfig() error: %v", err)
			}
			if cfg.Version != tt.wantVersion {
				t.Errorf("Version = %d, want %d", cfg.Version, tt.wantVersion)
			}
			if strings.Join(cfg.Imports, ",") != strings.Join(tt.wantImports, ",") {
				t.Errorf("Imports = %q, want %q", cfg.Imports, tt.wantImports)
			}
			if cfg.Path != path {
				t.Errorf("Path = %q, want %q", cfg.Path, path)
			}
		})
	}
}

func TestReadContainerdConfigMissingFile(t *testing.T) {
	_, err := ReadContainerdConfig(filepath.Join(t.TempDir(), "absent.toml"))
	if !errors.Is(err, ErrConfigNotFound) {
		t.Fatalf("error = %v, want one wrapping ErrConfigNotFound", err)
	}
}

func TestRuntimePluginID(t *testing.T) {
	tests := []struct {
		version int64
		want    string
		wantErr string
	}{
		{version: 2, want: "io.containerd.grpc.v1.cri"},
		{version: 3, want: "io.containerd.cri.v1.runtime"},
		{version: 4, want: "io.containerd.cri.v1.runtime"},
		{version: 0, wantErr: "version 0"},
		{version: 1, want: "cri"},
		{version: 5, wantErr: "version 5"},
		{version: -1, wantErr: "supported versions are 1 to 4"},
	}

	for _, tt := range tests {
		got, err := RuntimePluginID(tt.version)
		if tt.wantErr != "" {
			if !errors.Is(err, ErrUnsupportedVersion) {
				t.Errorf("RuntimePluginID(%d) error = %v, want ErrUnsupportedVersion", tt.version, err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("RuntimePluginID(%d) error %q does not contain %q", tt.version, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RuntimePluginID(%d) = %q, %v; want %q", tt.version, got, err, tt.want)
		}
	}
}

func TestDropInPath(t *testing.T) {
	tests := []struct {
		name    string
		imports []string
		want    string
		wantErr bool
	}{
		{name: "toml glob", imports: []string{"/x/conf.d/*.toml"}, want: "/x/conf.d/reaper.toml"},
		{name: "bare star", imports: []string{"/x/conf.d/*"}, want: "/x/conf.d/reaper.toml"},
		{name: "relative glob", imports: []string{"conf.d/*.toml"}, want: "/etc/containerd/conf.d/reaper.toml"},
		{name: "first usable wins", imports: []string{"/a/b.toml", "/y/*.toml", "/z/*.toml"}, want: "/y/reaper.toml"},
		{name: "no imports", imports: nil, wantErr: true},
		{name: "single file only", imports: []string{"/x/extra.toml"}, wantErr: true},
		{name: "glob not matching toml", imports: []string{"/x/conf.d/*.conf"}, wantErr: true},
		{name: "glob in directory", imports: []string{"/x/*/runtime.toml", "/x/*/*.toml"}, wantErr: true},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &ContainerdConfig{Path: "/etc/containerd/config.toml", Version: 2, Imports: tt.imports}
			got, err := cfg.DropInPath()
			if tt.wantErr {
				if !errors.Is(err, ErrNoDropInDir) {
					t.Fatalf("DropInPath() = %q, %v; want an error wrapping ErrNoDropInDir", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DropInPath() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("DropInPath() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDropInPathNoImportsMessage(t *testing.T) {
	cfg := &ContainerdConfig{Path: "/etc/containerd/config.toml", Version: 3}
	_, err := cfg.DropInPath()
	if err == nil {
		t.Fatal("DropInPath() error = nil, want one")
	}
	if !errors.Is(err, ErrNoDropInDir) || !strings.Contains(err.Error(), "/etc/containerd/config.toml has no imports") {
		t.Errorf("DropInPath() error = %q, want ErrNoDropInDir naming the config", err)
	}
}
