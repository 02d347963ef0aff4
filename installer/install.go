package installer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

const (
	// DefaultContainerdConfig is the root config of a plain containerd installation.
	DefaultContainerdConfig = "/etc/containerd/config.toml"
	// DefaultInstallDir is where the binaries go unless the host needs another writable path.
	DefaultInstallDir = "/opt/reaper/bin"
)

// Options selects what the installer reads and writes on the host.
type Options struct {
	// ContainerdConfig is the path of containerd's root config file.
	ContainerdConfig string
	// InstallDir is the directory the binaries are copied to and runtime_path points at.
	InstallDir string
	// SourceDir is the directory holding the binaries to copy. Uninstall does not use it.
	SourceDir string
	// Handlers are the CRI runtime handlers to register. Empty means DefaultHandler only.
	Handlers []string
	// ProtectedHandlers are handlers to register in the protected mode, such as
	// DefaultProtectedHandler.
	ProtectedHandlers []string
	// ProtectedRoot is "overlay" or "read-only" for the protected handlers, or empty
	// for the shim's default, overlay.
	ProtectedRoot string
	// LinkDir is a folder on containerd's PATH that gets a link to the installed shim, or
	// empty for none.
	LinkDir string
	// Templates are the k3s or rke2 templates of the root config by schema version, or
	// nil for a root config that nothing renders.
	Templates map[int64]string
	// Containerd is the state the running containerd reports, or nil when the CRI
	// request failed. A node without a root config gets one of the schema version it reads.
	Containerd *Containerd
	// CgroupDriver is the kubelet's cgroup driver. With "systemd" the handlers' options
	// get SystemdCgroup.
	CgroupDriver string
	// MigrateForeignHandlers takes handler tables of the same names that the installer
	// did not write out of the root config, instead of failing. The file's original stays
	// in its backup.
	MigrateForeignHandlers bool
	// DropInDir is a folder the distribution reads drop-ins from, whatever the root
	// config imports, such as k0s's /etc/k0s/containerd.d, or empty.
	DropInDir string
	// HostRoot is the folder that shows the host's / to the installer, such as /host in
	// a pod, or empty for /. ContainerdConfig, InstallDir and LinkDir are paths on the
	// host, which the installer reads and writes below HostRoot.
	HostRoot string
}

// onHost returns where the host path is in the installer's view.
func (o Options) onHost(path string) string {
	if o.HostRoot == "" || o.HostRoot == "/" {
		return path
	}
	return filepath.Join(o.HostRoot, path)
}

// readConfig reads the root config, with the host root it lies under and the
// distribution's drop-in folder.
func (o Options) readConfig() (*ContainerdConfig, error) {
	cfg, err := ReadContainerdConfig(o.onHost(o.ContainerdConfig))
	if err != nil {
		return nil, err
	}
	cfg.HostRoot = o.HostRoot
	if o.DropInDir != "" {
		cfg.DropInDir = o.onHost(o.DropInDir)
	}
	return cfg, nil
}

func (o Options) handlers() []Handler {
	names := o.Handlers
	if len(names) == 0 {
		names = []string{DefaultHandler}
	}

	systemd := o.CgroupDriver == CgroupDriverSystemd
	handlers := make([]Handler, 0, len(names)+len(o.ProtectedHandlers))
	for _, name := range names {
		handlers = append(handlers, Handler{Name: name, SystemdCgroup: systemd})
	}
	for _, name := range o.ProtectedHandlers {
		handlers = append(handlers, Handler{Name: name, Protected: true, ProtectedRoot: o.ProtectedRoot, SystemdCgroup: systemd})
	}
	return handlers
}

// InstallPlan is everything an install writes, computed before anything is written.
type InstallPlan struct {
	Config   *ContainerdConfig
	Binaries []BinaryCopy
	// DropInPath is the drop-in file and DropIn its complete content. Both are empty when the
	// handlers go into the root config.
	DropInPath string
	DropIn     []byte
	// RootConfig is the new content of the root config, or nil when it stays as it is. It
	// gets the handlers for schema version 2, with RootBlock the block it appends, or one
	// imports line for a drop-in when it imports no folder.
	RootConfig []byte
	RootBlock  []byte
	// Link is the link to the shim on containerd's PATH, or nil for none.
	Link *shimLink
	// Handlers are the names of the runtime handlers the plan registers.
	Handlers []string
	// TemplatePath is the k3s or rke2 template and Template its new content, when the
	// handlers go there.
	TemplatePath string
	Template     []byte
	// Migrated are the handlers whose foreign tables the plan takes out of the root
	// config, with Options.MigrateForeignHandlers.
	Migrated []string
	// CreatedDirs are the folders, as host paths, that the plan creates.
	CreatedDirs []string

	opts Options
}

// PlanInstall reads the containerd config and the source binaries and returns what Apply would
// write. It writes nothing, so it also serves a dry run. It fails with no edits when the config
// version is not supported or the config imports no drop-in directory.
func PlanInstall(opts Options) (*InstallPlan, error) {
	if err := opts.checkRecord(); err != nil {
		return nil, err
	}

	cfg, err := opts.readConfig()
	if errors.Is(err, ErrConfigNotFound) {
		cfg = &ContainerdConfig{Path: opts.onHost(opts.ContainerdConfig), Version: opts.createdVersion(), HostRoot: opts.HostRoot}
	} else if err != nil {
		return nil, err
	}
	if err := opts.checkVersion(cfg); err != nil {
		return nil, err
	}

	plan := &InstallPlan{Config: cfg, Link: newShimLink(opts), opts: opts}
	for _, handler := range opts.handlers() {
		plan.Handlers = append(plan.Handlers, handler.Name)
	}
	if plan.Link != nil {
		if _, err := plan.Link.current(); err != nil {
			return nil, err
		}
	}
	if err := plan.planConfig(); err != nil {
		return nil, err
	}

	for _, name := range Binaries {
		binary, err := planBinaryCopy(filepath.Join(opts.SourceDir, name), opts.onHost(filepath.Join(opts.InstallDir, name)))
		if err != nil {
			return nil, err
		}
		plan.Binaries = append(plan.Binaries, binary)
	}
	plan.CreatedDirs = plan.missingDirs()
	return plan, nil
}

// missingDirs returns the host paths of the folders that the plan's files need and the
// host lacks, deepest first.
func (p *InstallPlan) missingDirs() []string {
	dirs := []string{p.opts.onHost(p.opts.InstallDir)}
	if p.Link != nil {
		dirs = append(dirs, filepath.Dir(p.Link.path))
	}
	for _, f := range p.configFiles() {
		dirs = append(dirs, filepath.Dir(f.path))
	}

	var missing []string
	for _, dir := range dirs {
		for _, d := range missingDirs(dir, p.opts.onHost("/")) {
			missing = union(missing, []string{p.Config.hostPath(d)})
		}
	}
	return missing
}

// planConfig plans the config edit: the root block for schema versions 1 and 2, a drop-in
// otherwise, or the template of k3s and rke2.
func (p *InstallPlan) planConfig() error {
	cfg, opts := p.Config, p.opts
	template := opts.Templates[cfg.Version]
	if template != "" {
		path, err := cfg.DropInPath()
		if errors.Is(err, ErrNoDropInDir) {
			return p.planTemplate(opts, template)
		}
		if err == nil {
			p.DropIn, err = RenderDropIn(cfg.Version, opts.handlers(), opts.InstallDir)
			p.DropInPath = path
		}
		return err
	}

	content, err := p.rootContent()
	if err != nil {
		return err
	}
	if usesRootBlock(cfg.Version) && cfg.DropInDir == "" {
		if content == nil {
			content = createdRoot(cfg.Version)
		}
		return p.planRootBlock(content)
	}

	p.DropIn, err = RenderDropIn(cfg.Version, opts.handlers(), opts.InstallDir)
	if err != nil {
		return fmt.Errorf("containerd config %s: %w", cfg.Path, err)
	}

	p.DropInPath, err = cfg.DropInPath()
	if errors.Is(err, ErrNoDropInDir) && len(cfg.Imports) == 0 {
		return p.planImport(content)
	}
	if err != nil {
		return err
	}
	if len(p.Migrated) > 0 {
		p.RootConfig = content
	}
	return checkImportedHandlers(cfg, opts.handlers(), p.DropInPath)
}

// rootContent returns the root config's content, or nil when the node has none, without
// the foreign handler tables when the options migrate them.
func (p *InstallPlan) rootContent() ([]byte, error) {
	path, opts := p.Config.Path, p.opts
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read containerd config %s: %w", path, err)
	}

	content, p.Migrated, err = resolveForeignHandlers(path, content, p.Config.Version, opts.handlers(), opts.MigrateForeignHandlers)
	return content, err
}

// planRootBlock plans the handlers as a block at the end of the root config.
func (p *InstallPlan) planRootBlock(content []byte) error {
	cfg, opts := p.Config, p.opts
	var err error
	p.RootConfig, err = spliceRootBlock(cfg.Path, content, cfg.Version, opts.handlers(), opts.InstallDir)
	if err != nil {
		return err
	}
	p.RootBlock, err = renderRootBlock(cfg.Version, opts.handlers(), opts.InstallDir, lineEnding(content))
	return err
}

// DefaultConfigVersion is the schema version of the root config the installer writes
// where there is none, the one containerd 2.x reads. containerd 1.x gets version 2.
const DefaultConfigVersion = 3

// createdVersion returns the schema version of a root config written for a node that has
// none: 2 when containerd reports version 1.x, else DefaultConfigVersion.
// NOTE: with containerd not running, the node is taken for containerd 2.x.
func (o Options) createdVersion() int64 {
	if o.Containerd != nil && o.Containerd.Major() == 1 {
		return 2
	}
	return DefaultConfigVersion
}

// checkVersion fails when the running containerd does not read the config's schema
// version: versions 3 and 4 need containerd 2.x.
func (o Options) checkVersion(cfg *ContainerdConfig) error {
	if o.Containerd == nil || o.Containerd.Major() != 1 || cfg.Version < 3 {
		return nil
	}
	return fmt.Errorf("containerd config %s has version %d, which containerd %s does not read (1.x reads versions 1 and 2); "+
		"point --containerd-config at the config this containerd runs with", cfg.Path, cfg.Version, o.Containerd.Version)
}

// createdRootHeader starts a root config the installer wrote because the node had none.
// Uninstall removes such a file whole, so containerd runs on its defaults again.
const createdRootHeader = "# Written by reaper-installer: containerd's defaults plus Reaper's handlers. `reaper-installer uninstall` removes this file.\n"

// createdRoot returns the root config for a node without one: the header, the version
// and nothing else, to which the plan adds the import or the handler block.
func createdRoot(version int64) []byte {
	return []byte(fmt.Sprintf("%sversion = %d\n", createdRootHeader, version))
}

// isCreatedRoot reports whether content is a root config of createdRoot, with the
// installer's additions removed.
func isCreatedRoot(content []byte) bool {
	for _, version := range []int64{2, DefaultConfigVersion} {
		if bytes.Equal(content, createdRoot(version)) {
			return true
		}
	}
	return false
}

// planImport plans a drop-in in DefaultDropInDir beside a root config that imports no
// folder, and the one line that imports it.
func (p *InstallPlan) planImport(content []byte) error {
	cfg := p.Config
	if content == nil {
		content = createdRoot(cfg.Version)
	}

	dir := filepath.Join(filepath.Dir(cfg.Path), DefaultDropInDir)
	var err error
	if p.RootConfig, err = spliceImport(cfg.Path, content, cfg.hostPath(dir)); err != nil {
		return err
	}
	p.DropInPath = filepath.Join(dir, DropInName)
	return nil
}

// Apply installs the binaries, then writes the drop-in, so containerd never reads a runtime_path
// that does not exist yet. It returns whether any file changed, because containerd needs a
// restart only then. Running it again with the same plan changes nothing.
func (p *InstallPlan) Apply(log *slog.Logger) (bool, error) {
	if err := p.writeRecord(); err != nil {
		return false, err
	}

	changed := false
	for _, b := range p.Binaries {
		wrote, err := b.install()
		if err != nil {
			return changed, err
		}
		log.Info("binary installed", "path", b.Target, "sha256", b.SHA256, "changed", wrote)
		changed = changed || wrote
	}

	if p.Link != nil {
		linked, err := p.Link.create()
		if err != nil {
			return changed, err
		}
		log.Info("shim linked onto containerd's PATH", "path", p.Link.path, "target", p.Link.target, "changed", linked)
	}

	// The drop-in comes before the root config, which may import it.
	if p.DropInPath != "" {
		wrote, err := p.writeDropIn()
		if err != nil {
			return changed, err
		}
		log.Info("containerd drop-in written", "path", p.DropInPath, "configVersion", p.Config.Version, "changed", wrote)
		changed = changed || wrote
	}

	if p.RootConfig != nil {
		wrote, err := writeRootConfig(p.Config.Path, p.RootConfig)
		if err != nil {
			return changed, err
		}
		log.Info("containerd root config updated", "path", p.Config.Path, "configVersion", p.Config.Version, "changed", wrote)
		changed = changed || wrote
	}

	if p.TemplatePath != "" {
		wrote, err := p.writeTemplate()
		if err != nil {
			return changed, err
		}
		log.Info("containerd template updated", "path", p.TemplatePath, "configVersion", p.Config.Version, "changed", wrote)
		changed = changed || wrote
	}

	if len(p.Migrated) > 0 {
		log.Info("hand-written handler tables replaced; the original config stays in its backup",
			"handlers", p.Migrated, "backup", p.Config.hostPath(p.Config.Path)+backupSuffix)
	}
	return changed, nil
}

// backupSuffix names the copy of a file from before the installer first edited it.
const backupSuffix = ".reaper-backup"

// writeRootConfig replaces the root config with content, keeping its mode, unless it already
// has that content. The first edit keeps the original beside it as PATH.reaper-backup.
func writeRootConfig(path string, content []byte) (bool, error) {
	current, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && bytes.HasPrefix(content, []byte(createdRootHeader)) {
		return true, writeCreatedRoot(path, content)
	}
	if err != nil {
		return false, fmt.Errorf("read containerd config %s: %w", path, err)
	}
	if bytes.Equal(current, content) {
		return false, nil
	}

	info, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("stat containerd config %s: %w", path, err)
	}

	backup := path + backupSuffix
	if _, err := os.Stat(backup); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(backup, current, info.Mode().Perm()); err != nil {
			return false, fmt.Errorf("write backup %s: %w", backup, err)
		}
	}

	if err := writeFileAtomic(path, content, info.Mode().Perm()); err != nil {
		return false, fmt.Errorf("write containerd config %s: %w", path, err)
	}
	return true, nil
}

// writeDropIn writes the drop-in unless it already has the planned content. It refuses to
// replace a file at that path that the installer did not write.
func (p *InstallPlan) writeDropIn() (bool, error) {
	current, err := os.ReadFile(p.DropInPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("read existing drop-in %s: %w", p.DropInPath, err)
	case bytes.Equal(current, p.DropIn):
		return false, nil
	case !isOwnedDropIn(current):
		return false, fmt.Errorf("drop-in %s exists and was not written by reaper-installer; "+
			"move it away or merge it by hand, the installer leaves it as it is", p.DropInPath)
	}

	dir := filepath.Dir(p.DropInPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create drop-in directory %s: %w", dir, err)
	}
	if err := writeFileAtomic(p.DropInPath, p.DropIn, 0o644); err != nil {
		return false, fmt.Errorf("write drop-in %s: %w", p.DropInPath, err)
	}
	return true, nil
}

// Describe prints the plan for a dry run: each copy and link, and a unified diff of each
// config file it writes.
func (p *InstallPlan) Describe(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "write the install record %s\n", p.opts.onHost(p.opts.recordPath())); err != nil {
		return err
	}
	for _, b := range p.Binaries {
		if _, err := fmt.Fprintf(w, "copy %s to %s (mode 0755, sha256 %s)\n", b.Source, b.Target, b.SHA256); err != nil {
			return err
		}
	}
	if p.Link != nil {
		if _, err := fmt.Fprintf(w, "link %s to %s\n", p.Link.path, p.Link.target); err != nil {
			return err
		}
	}

	if p.DropInPath != "" {
		if err := writeFileDiff(w, p.DropInPath, p.DropIn); err != nil {
			return err
		}
	}
	if p.RootConfig != nil {
		if err := writeFileDiff(w, p.Config.Path, p.RootConfig); err != nil {
			return err
		}
	}
	if p.TemplatePath != "" {
		return writeFileDiff(w, p.TemplatePath, p.Template)
	}
	return nil
}

// writeCreatedRoot writes the root config of a node that had none.
func writeCreatedRoot(path string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create the folder of containerd config %s: %w", path, err)
	}
	if err := writeFileAtomic(path, content, 0o644); err != nil {
		return fmt.Errorf("write containerd config %s: %w", path, err)
	}
	return nil
}
