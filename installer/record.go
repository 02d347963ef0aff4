package installer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// RecordName is the file in the install directory that records what an install wrote.
const RecordName = "installer-record.json"

// recordFormat is the format version of the record, raised when its meaning changes.
const recordFormat = 1

// The roles of the files a record lists.
const (
	RoleBinary     = "binary"
	RoleLink       = "link"
	RoleDropIn     = "drop-in"
	RoleRootConfig = "root-config"
	RoleTemplate   = "template"
)

// Record is the list of paths and files the last install wrote on the host. Uninstall
// takes its paths from it, so it reverts the install even when its flags differ. Status
// compares the host with it to report drift, which the next install repairs.
type Record struct {
	Format           int    `json:"format"`
	ContainerdConfig string `json:"containerdConfig"`
	ConfigVersion    int64  `json:"configVersion"`
	// Template is the k3s or rke2 template of ConfigVersion, when the root config is
	// rendered from one.
	Template string `json:"template,omitempty"`
	// DropInDir is the distribution's drop-in folder, when it has one.
	DropInDir  string    `json:"dropInDir,omitempty"`
	InstallDir string    `json:"installDir"`
	LinkDir    string    `json:"linkDir,omitempty"`
	Handlers   []Handler `json:"handlers"`
	// Migrated are the handlers whose hand-written tables the install took out.
	Migrated []string       `json:"migrated,omitempty"`
	Files    []RecordedFile `json:"files"`
	// CreatedDirs are the folders the installs created, deepest first. Uninstall removes
	// each one that is empty.
	CreatedDirs []string `json:"createdDirs,omitempty"`
}

// RecordedFile is one file an install wrote or edited, by its path on the host.
type RecordedFile struct {
	Path string `json:"path"`
	Role string `json:"role"`
	// SHA256 is the digest of the whole file as the install left it, and empty for a link.
	SHA256 string `json:"sha256,omitempty"`
	// Backup is the copy of the file from before the installer first edited it.
	Backup string `json:"backup,omitempty"`
}

// recordPath returns where the record of an install into opts.InstallDir is, on the host.
func (o Options) recordPath() string {
	return filepath.Join(o.InstallDir, RecordName)
}

// ReadRecord returns the record below the host root of opts, or nil when there is none.
func ReadRecord(opts Options) (*Record, error) {
	path := opts.onHost(opts.recordPath())
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the install record %s: %w", path, err)
	}

	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("install record %s is not valid JSON (%w); remove it and install again", path, err)
	}
	if rec.Format != recordFormat {
		return nil, fmt.Errorf("install record %s has format %d, and this installer reads format %d; use the installer that wrote it",
			path, rec.Format, recordFormat)
	}
	return &rec, nil
}

// checkRecord fails when the host has a record of an install with other paths than
// opts: a second install would leave the first one's files where uninstall does not look.
// It also looks in DefaultInstallDir when opts names another install folder.
func (o Options) checkRecord() error {
	rec, err := ReadRecord(o)
	if err != nil {
		return err
	}
	if rec == nil && o.InstallDir != DefaultInstallDir {
		other := o
		other.InstallDir = DefaultInstallDir
		if rec, err = ReadRecord(other); err != nil || rec == nil {
			return err
		}
	}
	if rec == nil {
		return nil
	}

	for _, path := range []struct{ flag, recorded, given string }{
		{"--containerd-config", rec.ContainerdConfig, o.ContainerdConfig},
		{"--install-dir", rec.InstallDir, o.InstallDir},
		{"--link-dir", rec.LinkDir, o.LinkDir},
	} {
		if path.recorded != path.given {
			return fmt.Errorf("this node has Reaper installed with %s %q (see %s), not %q: run uninstall first, or install again with %s %q",
				path.flag, path.recorded, filepath.Join(rec.InstallDir, RecordName), path.given, path.flag, path.recorded)
		}
	}
	return nil
}

// cgroupDriver returns the cgroup driver the recorded handlers use.
func (r *Record) cgroupDriver() string {
	if slices.ContainsFunc(r.Handlers, func(h Handler) bool { return h.SystemdCgroup }) {
		return CgroupDriverSystemd
	}
	return CgroupDriverCgroupfs
}

// apply returns opts with the paths of the recorded install.
func (r *Record) apply(opts Options) Options {
	opts.ContainerdConfig = r.ContainerdConfig
	opts.InstallDir = r.InstallDir
	opts.LinkDir = r.LinkDir
	opts.DropInDir = r.DropInDir
	opts.Templates = nil
	if r.Template != "" {
		opts.Templates = map[int64]string{r.ConfigVersion: r.Template}
	}
	return opts
}

// newRecord returns the record of the install plan, keeping the folders and the config
// edits of an earlier install.
func (p *InstallPlan) newRecord(previous *Record) *Record {
	opts := p.opts
	rec := &Record{
		Format:           recordFormat,
		ContainerdConfig: opts.ContainerdConfig,
		ConfigVersion:    p.Config.Version,
		Template:         p.template(),
		DropInDir:        opts.DropInDir,
		InstallDir:       opts.InstallDir,
		LinkDir:          opts.LinkDir,
		Handlers:         opts.handlers(),
		Migrated:         p.Migrated,
		CreatedDirs:      p.CreatedDirs,
	}
	if previous != nil {
		rec.Migrated = union(previous.Migrated, rec.Migrated)
		rec.CreatedDirs = union(previous.CreatedDirs, rec.CreatedDirs)
	}
	// Deepest first, so that uninstall removes a folder before its parent.
	slices.SortFunc(rec.CreatedDirs, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})

	for _, b := range p.Binaries {
		rec.Files = append(rec.Files, RecordedFile{Path: p.Config.hostPath(b.Target), Role: RoleBinary, SHA256: b.SHA256})
	}
	if p.Link != nil {
		rec.Files = append(rec.Files, RecordedFile{Path: p.Config.hostPath(p.Link.path), Role: RoleLink})
	}
	for _, f := range p.configFiles() {
		rec.Files = append(rec.Files, p.recordFile(f))
	}
	if previous != nil {
		rec.Files = append(rec.Files, p.earlierEdits(previous, rec.Files)...)
	}
	return rec
}

// earlierEdits returns the config files of the previous record that the plan leaves as
// they are, because an earlier install edited them already, with their current digests.
func (p *InstallPlan) earlierEdits(previous *Record, planned []RecordedFile) []RecordedFile {
	var edits []RecordedFile
	for _, f := range previous.Files {
		if f.Role != RoleRootConfig && f.Role != RoleTemplate {
			continue
		}
		if slices.ContainsFunc(planned, func(r RecordedFile) bool { return r.Path == f.Path }) {
			continue
		}
		sum, err := fileSHA256(p.opts.onHost(f.Path))
		if err != nil {
			continue
		}
		f.SHA256 = sum
		edits = append(edits, f)
	}
	return edits
}

// plannedFile is a config file a plan writes, with its role and planned content.
type plannedFile struct {
	path, role string
	content    []byte
}

// configFiles returns the config files the plan writes, in the installer's view.
func (p *InstallPlan) configFiles() []plannedFile {
	var files []plannedFile
	if p.DropInPath != "" {
		files = append(files, plannedFile{p.DropInPath, RoleDropIn, p.DropIn})
	}
	if p.RootConfig != nil {
		files = append(files, plannedFile{p.Config.Path, RoleRootConfig, p.RootConfig})
	}
	if p.TemplatePath != "" {
		files = append(files, plannedFile{p.TemplatePath, RoleTemplate, p.Template})
	}
	return files
}

// recordFile returns the record of a config file with its planned content. A root
// config or template that exists gets a backup with its first edit.
func (p *InstallPlan) recordFile(f plannedFile) RecordedFile {
	sum := sha256.Sum256(f.content)
	recorded := RecordedFile{Path: p.Config.hostPath(f.path), Role: f.role, SHA256: hex.EncodeToString(sum[:])}
	if f.role == RoleDropIn {
		return recorded
	}

	// writeRootConfig keeps a backup when it first changes a file that exists.
	current, errFile := os.ReadFile(f.path)
	_, errBackup := os.Stat(f.path + backupSuffix)
	if errBackup == nil || (errFile == nil && !bytes.Equal(current, f.content)) {
		recorded.Backup = recorded.Path + backupSuffix
	}
	return recorded
}

// template returns the host path of the template the plan writes, or "".
func (p *InstallPlan) template() string {
	if p.TemplatePath == "" {
		return ""
	}
	return p.opts.Templates[p.Config.Version]
}

// writeRecord writes the record of the plan into the install directory before the plan
// changes anything, so that an uninstall after an interrupted install still finds every
// folder the install created.
func (p *InstallPlan) writeRecord() error {
	previous, err := ReadRecord(p.opts)
	if err != nil {
		return err
	}

	data, err := json.MarshalIndent(p.newRecord(previous), "", "  ")
	if err != nil {
		return fmt.Errorf("encode the install record: %w", err)
	}
	path := p.opts.onHost(p.opts.recordPath())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create the install directory %s: %w", filepath.Dir(path), err)
	}
	if err := writeFileAtomic(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the install record %s: %w", path, err)
	}
	return nil
}

// Drift compares the host with the record and returns what differs, each as a sentence:
// recorded files that are gone or changed, and recorded handlers that the config files,
// which register the handlers found, no longer register. The next install repairs it.
func (r *Record) Drift(opts Options, found []string) []string {
	drift := r.fileDrift(opts, RoleBinary, RoleLink, RoleDropIn, RoleRootConfig, RoleTemplate)
	for _, h := range r.Handlers {
		if !slices.Contains(found, h.Name) {
			drift = append(drift, fmt.Sprintf("containerd's config no longer registers the runtime handler %s", h.Name))
		}
	}
	return drift
}

// fileDrift returns how the recorded files of the roles differ from the host.
func (r *Record) fileDrift(opts Options, roles ...string) []string {
	var drift []string
	for _, f := range r.Files {
		if !slices.Contains(roles, f.Role) {
			continue
		}
		if msg := f.drift(opts); msg != "" {
			drift = append(drift, msg)
		}
	}
	return drift
}

// drift returns how the file differs from the record, or "" when it does not.
func (f RecordedFile) drift(opts Options) string {
	path := opts.onHost(f.Path)
	if f.Role == RoleLink {
		if _, err := os.Lstat(path); err != nil {
			return fmt.Sprintf("the shim link %s is gone", f.Path)
		}
		return ""
	}

	name := roleNames[f.Role]
	sum, err := fileSHA256(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("the %s %s is gone", name, f.Path)
	case err != nil:
		return fmt.Sprintf("the %s %s cannot be read: %v", name, f.Path, err)
	case sum != f.SHA256:
		return fmt.Sprintf("the %s %s changed since the install", name, f.Path)
	}
	return ""
}

// roleNames are the words for the roles in drift messages.
var roleNames = map[string]string{
	RoleBinary:     "binary",
	RoleDropIn:     "drop-in",
	RoleRootConfig: "containerd config",
	RoleTemplate:   "containerd template",
}

// missingDirs returns dir and each of its parents below stop that does not exist,
// deepest first.
func missingDirs(dir, stop string) []string {
	var missing []string
	for dir != stop && dir != "/" && dir != "." {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		missing = append(missing, dir)
		dir = filepath.Dir(dir)
	}
	return missing
}

// union returns the entries of a followed by those of b that a lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// HandlerNames returns the names of the runtime handlers that the install registered.
func (r *Record) HandlerNames() []string {
	names := make([]string, 0, len(r.Handlers))
	for _, handler := range r.Handlers {
		names = append(names, handler.Name)
	}
	return names
}
