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
	"slices"
)

// UninstallPlan is the set of files an uninstall removes.
type UninstallPlan struct {
	// RootConfigPath is the root config to rewrite without the installer's block or
	// imports line, and RootConfig its new content. Both are empty when it has neither.
	RootConfigPath string
	RootConfig     []byte
	// RemoveRootConfig removes the root config, which the installer wrote whole.
	RemoveRootConfig bool
	// TemplatePath is the k3s or rke2 template with the installer's block, and Template
	// its content without it. A nil Template removes the file, which the installer wrote
	// whole.
	TemplatePath string
	Template     []byte
	// DropInPath is the drop-in to remove, or empty when there is none.
	DropInPath string
	// Binaries are the installed binaries to remove, each only if it exists.
	Binaries []string
	// Link is the link to the shim on containerd's PATH to remove, if it points at the
	// installed shim.
	Link *shimLink
	// RecordPath is the install record, removed after the binaries.
	RecordPath string
	// CreatedDirs are the folders the installs created, removed last when empty.
	CreatedDirs []string
}

// PlanUninstall finds the drop-in and the binaries that an install wrote, at the paths of
// the install record when there is one, else at those of opts. A missing
// root config, one without a drop-in directory, or a drop-in that is already gone leave nothing
// to remove for the config, so uninstalling twice is not an error. The config's version is not
// checked, because removing the installer's own file needs no plugin path.
func PlanUninstall(opts Options) (*UninstallPlan, error) {
	rec, err := ReadRecord(opts)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		opts = rec.apply(opts)
	}

	plan := &UninstallPlan{Link: newShimLink(opts), RecordPath: opts.onHost(opts.recordPath())}
	if rec != nil {
		for _, dir := range rec.CreatedDirs {
			plan.CreatedDirs = append(plan.CreatedDirs, opts.onHost(dir))
		}
	}
	for _, name := range Binaries {
		plan.Binaries = append(plan.Binaries, opts.onHost(filepath.Join(opts.InstallDir, name)))
	}

	cfg, err := opts.readConfig()
	if errors.Is(err, ErrConfigNotFound) {
		return plan, nil
	}
	if err != nil {
		return nil, err
	}
	if err := plan.planRootConfig(cfg.Path); err != nil {
		return nil, err
	}
	if template := opts.Templates[cfg.Version]; template != "" {
		if err := plan.planTemplate(opts.onHost(template)); err != nil {
			return nil, err
		}
	}
	path, err := cfg.DropInPath()
	if errors.Is(err, ErrNoDropInDir) {
		return plan, nil
	}
	if err != nil {
		return nil, err
	}

	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return plan, nil
	case err != nil:
		return nil, fmt.Errorf("read drop-in %s: %w", path, err)
	case !isOwnedDropIn(data):
		return nil, fmt.Errorf("drop-in %s was not written by reaper-installer; remove the Reaper "+
			"runtime handlers from it by hand, the installer leaves it as it is", path)
	}
	plan.DropInPath = path
	return plan, nil
}

// planTemplate plans removing the installer's block from a k3s or rke2 template.
func (p *UninstallPlan) planTemplate(path string) error {
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the containerd template %s: %w", path, err)
	}

	stripped, found, err := templateWithoutReaper(content)
	if err != nil {
		return fmt.Errorf("containerd template %s: %w", path, err)
	}
	if found {
		p.TemplatePath, p.Template = path, stripped
	}
	return nil
}

// planRootConfig plans removing the installer's block from the root config, if it has one.
func (p *UninstallPlan) planRootConfig(path string) error {
	content, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read containerd config %s: %w", path, err)
	}

	stripped, found, err := withoutRootBlock(content)
	if err != nil {
		return fmt.Errorf("containerd config %s: %w", path, err)
	}
	stripped, imported := withoutImport(stripped)
	if found || imported {
		p.RootConfigPath, p.RootConfig = path, stripped
	}
	if (found || imported) && isCreatedRoot(stripped) {
		// The installer wrote the whole file for a node that had none.
		p.RemoveRootConfig = true
	}
	return nil
}

// Apply removes the drop-in first and the binaries last, so containerd's config never points at a
// removed shim. It returns whether anything was removed.
func (p *UninstallPlan) Apply(log *slog.Logger) (bool, error) {
	changed := false
	switch {
	case p.RemoveRootConfig:
		if _, err := removeFile(p.RootConfigPath); err != nil {
			return false, err
		}
		_, _ = removeFile(p.RootConfigPath + backupSuffix)
		log.Info("containerd root config removed, containerd runs on its defaults", "path", p.RootConfigPath)
		changed = true
	case p.RootConfigPath != "":
		wrote, err := revertFile(log, p.RootConfigPath, p.RootConfig)
		if err != nil {
			return false, err
		}
		log.Info("containerd root config reverted", "path", p.RootConfigPath, "changed", wrote)
		changed = wrote
	}

	if p.TemplatePath != "" {
		removed, err := p.revertTemplate(log)
		if err != nil {
			return changed, err
		}
		log.Info("containerd template reverted", "path", p.TemplatePath, "changed", removed)
		changed = changed || removed
	}

	if p.DropInPath != "" {
		removed, err := removeFile(p.DropInPath)
		if err != nil {
			return false, err
		}
		log.Info("containerd drop-in removed", "path", p.DropInPath, "changed", removed)
		changed = changed || removed
	}

	if p.Link != nil {
		removed, err := p.Link.remove()
		if err != nil {
			return changed, err
		}
		log.Info("shim link removed", "path", p.Link.path, "changed", removed)
		changed = changed || removed
	}

	for _, path := range p.Binaries {
		removed, err := removeFile(path)
		if err != nil {
			return changed, err
		}
		log.Info("binary removed", "path", path, "changed", removed)
		changed = changed || removed
	}
	return changed, p.removeRecord(log)
}

// removeRecord removes the install record, then each folder the installs created that
// is empty now.
func (p *UninstallPlan) removeRecord(log *slog.Logger) error {
	if _, err := removeFile(p.RecordPath); err != nil {
		return err
	}
	for _, dir := range p.CreatedDirs {
		err := os.Remove(dir)
		if err == nil {
			log.Info("folder removed", "path", dir)
		}
	}
	return nil
}

// revertFile writes content to path, and removes the file's backup when it contains the
// same bytes: the file is as it was before the install. A backup that differs, such as
// the original of a migrated config, stays.
func revertFile(log *slog.Logger, path string, content []byte) (bool, error) {
	wrote, err := writeRootConfig(path, content)
	if err != nil {
		return wrote, err
	}

	backup, err := os.ReadFile(path + backupSuffix)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err == nil && bytes.Equal(backup, content):
		_, err = removeFile(path + backupSuffix)
	case err == nil:
		log.Info("the backup differs from the reverted file and stays", "path", path, "backup", path+backupSuffix)
	}
	return wrote, err
}

// Describe prints what Apply would change: a unified diff of each config file it edits
// or removes, and each binary it removes.
func (p *UninstallPlan) Describe(w io.Writer) error {
	if p.RootConfigPath != "" {
		planned := p.RootConfig
		if p.RemoveRootConfig {
			planned = nil
		}
		if err := writeFileDiff(w, p.RootConfigPath, planned); err != nil {
			return err
		}
	}
	if p.TemplatePath != "" {
		if err := writeFileDiff(w, p.TemplatePath, p.Template); err != nil {
			return err
		}
	}
	if p.DropInPath != "" {
		if err := writeFileDiff(w, p.DropInPath, nil); err != nil {
			return err
		}
	}
	for _, path := range append(slices.Clone(p.Binaries), p.RecordPath) {
		if _, err := fmt.Fprintf(w, "remove %s if it exists\n", path); err != nil {
			return err
		}
	}
	return nil
}

// removeFile removes path and its directory entry durably. A missing file is not an error.
func removeFile(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", path, err)
	}
	return true, syncDir(filepath.Dir(path))
}

// revertTemplate writes the template without the installer's block, or removes it.
func (p *UninstallPlan) revertTemplate(log *slog.Logger) (bool, error) {
	if p.Template == nil {
		removed, err := removeFile(p.TemplatePath)
		_, _ = removeFile(p.TemplatePath + backupSuffix)
		return removed, err
	}
	return revertFile(log, p.TemplatePath, p.Template)
}
