package installer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// templateHeader starts a k3s or rke2 template that the installer wrote because the node
// had none. Uninstall removes such a file whole.
const templateHeader = "# Written by reaper-installer: the base template of k3s or rke2 plus Reaper's runtime handlers. `reaper-installer uninstall` removes this file.\n"

// baseTemplate includes the config that k3s and rke2 would render without a template.
const baseTemplate = "{{ template \"base\" . }}\n"

// planTemplate plans Reaper's tables in the template that k3s or rke2 render the root
// config from, for a rendered config that imports no drop-in folder. A template that
// exists keeps every line and gets the marked block at its end, after the base include,
// so no table of the base is opened again. Without one, the installer writes the base
// include and the block only, never a copy of the rendered file.
func (p *InstallPlan) planTemplate(opts Options, template string) error {
	cfg := p.Config
	rendered, err := os.ReadFile(cfg.Path)
	if err != nil {
		return fmt.Errorf("read containerd config %s: %w", cfg.Path, err)
	}
	if err := checkForeignHandlers(cfg.Path, rendered, cfg.Version, opts.handlers()); err != nil {
		return err
	}

	path := opts.onHost(template)
	current, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		current = []byte(templateHeader + baseTemplate)
	case err != nil:
		return fmt.Errorf("read the containerd template %s: %w", path, err)
	}

	base, _, err := withoutRootBlock(current)
	if err != nil {
		return fmt.Errorf("containerd template %s: %w", path, err)
	}
	block, err := renderRootBlock(cfg.Version, opts.handlers(), opts.InstallDir, lineEnding(base))
	if err != nil {
		return fmt.Errorf("containerd template %s: %w", path, err)
	}

	p.TemplatePath = path
	p.Template = append(bytes.Clone(base), block...)
	return nil
}

// writeTemplate writes the planned template. An existing template keeps its mode.
func (p *InstallPlan) writeTemplate() (bool, error) {
	if _, err := os.Stat(p.TemplatePath); errors.Is(err, fs.ErrNotExist) {
		return true, writeCreatedRoot(p.TemplatePath, p.Template)
	}
	return writeRootConfig(p.TemplatePath, p.Template)
}

// templateWithoutReaper returns the template without the installer's block, and nil
// when the installer wrote the whole file.
func templateWithoutReaper(content []byte) ([]byte, bool, error) {
	stripped, found, err := withoutRootBlock(content)
	if err != nil || !found {
		return content, found, err
	}
	if string(stripped) == templateHeader+baseTemplate {
		return nil, true, nil
	}
	return stripped, true, nil
}
