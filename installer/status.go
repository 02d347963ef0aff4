package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/pelletier/go-toml/v2"
)

// Status is the state of the installer's own files on the host.
type Status struct {
	// ContainerdConfig is the root config and ConfigVersion its schema version.
	ContainerdConfig string `json:"containerdConfig"`
	ConfigVersion    int64  `json:"configVersion"`
	// DropIn is the Reaper-owned drop-in, when there is one.
	DropIn string `json:"dropIn,omitempty"`
	// RootBlock and RootImport report the installer's block (schema versions 1 and 2) and its
	// imports line in the root config.
	RootBlock  bool `json:"rootBlock"`
	RootImport bool `json:"rootImport"`
	// Template is the k3s or rke2 template that holds the installer's block.
	Template string `json:"template,omitempty"`
	// Handlers are the runtime handlers the installer's files register.
	Handlers []string `json:"handlers"`
	// Binaries are the installed binaries; Link is the shim link, when there is one.
	Binaries []BinaryStatus `json:"binaries"`
	Link     string         `json:"link,omitempty"`
	// Record is the install record, when there is one, and Drift how the host differs
	// from it. HandlerCgroupDriver is the cgroup driver the recorded handlers use.
	Record              string   `json:"record,omitempty"`
	Drift               []string `json:"drift,omitempty"`
	HandlerCgroupDriver string   `json:"handlerCgroupDriver,omitempty"`
	// BinaryDrift is the part of Drift about the binaries and the shim link.
	BinaryDrift []string `json:"-"`
	// ForeignHandlers are handlers of Reaper's default names that the root config
	// defines outside the installer's block, such as a table added by hand.
	ForeignHandlers []string `json:"foreignHandlers,omitempty"`
}

// BinaryStatus is one installed binary.
type BinaryStatus struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256,omitempty"`
}

// Installed reports whether the installer's files register at least one handler and
// every binary is in place.
func (s *Status) Installed() bool {
	if len(s.Handlers) == 0 {
		return false
	}
	return !slices.ContainsFunc(s.Binaries, func(b BinaryStatus) bool { return b.SHA256 == "" })
}

// ReadStatus reads what the installer wrote on the host, and writes nothing.
func ReadStatus(opts Options) (*Status, error) {
	rec, err := ReadRecord(opts)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		opts = rec.apply(opts)
	}

	status := &Status{ContainerdConfig: opts.ContainerdConfig}
	if err := status.readFiles(opts); err != nil {
		return nil, err
	}
	if rec != nil {
		status.Record = opts.recordPath()
		status.Drift = rec.Drift(opts, status.Handlers)
		status.BinaryDrift = rec.fileDrift(opts, RoleBinary, RoleLink)
		status.HandlerCgroupDriver = rec.cgroupDriver()
	}
	return status, nil
}

// readFiles reads the binaries and the config files the installer writes.
func (s *Status) readFiles(opts Options) error {
	if err := s.readBinaries(opts); err != nil {
		return err
	}

	cfg, err := opts.readConfig()
	if errors.Is(err, ErrConfigNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.ConfigVersion = cfg.Version

	content, err := os.ReadFile(cfg.Path)
	if err != nil {
		return fmt.Errorf("read containerd config %s: %w", cfg.Path, err)
	}
	if err := s.readRootConfig(content); err != nil {
		return fmt.Errorf("containerd config %s: %w", cfg.Path, err)
	}
	if err := s.readForeignHandlers(cfg, content); err != nil {
		return err
	}
	if template := opts.Templates[cfg.Version]; template != "" {
		if err := s.readTemplate(opts.onHost(template)); err != nil {
			return err
		}
	}
	return s.readDropIn(cfg)
}

// readForeignHandlers finds the handlers of Reaper's default names that the root config
// defines outside the installer's block. A config of an unknown version has none.
func (s *Status) readForeignHandlers(cfg *ContainerdConfig, content []byte) error {
	if _, err := RuntimePluginID(cfg.Version); errors.Is(err, ErrUnsupportedVersion) {
		return nil
	}

	base, _, err := withoutRootBlock(content)
	if err != nil {
		return fmt.Errorf("containerd config %s: %w", cfg.Path, err)
	}
	s.ForeignHandlers, err = definedHandlers(cfg.Path, base, cfg.Version, []string{DefaultHandler, DefaultProtectedHandler})
	return err
}

// readTemplate adds the handlers of the installer's block in a k3s or rke2 template.
func (s *Status) readTemplate(path string) error {
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the containerd template %s: %w", path, err)
	}

	start, end, found, err := findRootBlock(content)
	if err != nil || !found {
		return err
	}
	s.Template = path
	return s.addHandlers(content[start:end])
}

func (s *Status) readBinaries(opts Options) error {
	for _, name := range Binaries {
		path := opts.onHost(filepath.Join(opts.InstallDir, name))
		binary := BinaryStatus{Path: path}
		sum, err := fileSHA256(path)
		switch {
		case err == nil:
			binary.SHA256 = sum
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("hash installed binary %s: %w", path, err)
		}
		s.Binaries = append(s.Binaries, binary)
	}

	if link := newShimLink(opts); link != nil {
		if target, err := link.current(); err == nil && target == link.target {
			s.Link = link.path
		}
	}
	return nil
}

func (s *Status) readRootConfig(content []byte) error {
	start, end, found, err := findRootBlock(content)
	if err != nil {
		return err
	}
	_, s.RootImport = withoutImport(content)
	if !found {
		return nil
	}

	s.RootBlock = true
	return s.addHandlers(content[start:end])
}

func (s *Status) readDropIn(cfg *ContainerdConfig) error {
	path, err := cfg.DropInPath()
	if errors.Is(err, ErrNoDropInDir) {
		return nil
	}
	if err != nil {
		return err
	}

	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !isOwnedDropIn(data)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read drop-in %s: %w", path, err)
	}
	s.DropIn = path
	return s.addHandlers(data)
}

// addHandlers adds the runtimes of RuntimeType that a TOML fragment defines.
func (s *Status) addHandlers(fragment []byte) error {
	var doc struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]struct {
					RuntimeType string `toml:"runtime_type"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(fragment, &doc); err != nil {
		return fmt.Errorf("parse the installer's handler tables: %w", err)
	}

	for _, plugin := range doc.Plugins {
		for name, runtime := range plugin.Containerd.Runtimes {
			if runtime.RuntimeType == RuntimeType && !slices.Contains(s.Handlers, name) {
				s.Handlers = append(s.Handlers, name)
			}
		}
	}
	slices.Sort(s.Handlers)
	return nil
}
