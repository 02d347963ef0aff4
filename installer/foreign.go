package installer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/pelletier/go-toml/v2/unstable"
)

// MigrateFlag is the command-line flag that sets Options.MigrateForeignHandlers, named in
// the error that a foreign handler table gives.
const MigrateFlag = "--migrate-foreign-handlers"

// resolveForeignHandlers checks the root config content for handler tables of the same
// names that the installer did not write. Without migrate, any such table is an error that
// names it and MigrateFlag. With migrate, it returns content without those tables and the
// names it took out. The caller's edit keeps the original as the file's backup.
func resolveForeignHandlers(path string, content []byte, version int64, handlers []Handler, migrate bool) ([]byte, []string, error) {
	base, _, err := withoutRootBlock(content)
	if err != nil {
		return nil, nil, fmt.Errorf("containerd config %s: %w", path, err)
	}
	foreign, err := definedHandlers(path, base, version, handlerNames(handlers))
	if err != nil || len(foreign) == 0 {
		return content, nil, err
	}

	if !migrate {
		pluginID, _ := RuntimePluginID(version)
		return nil, nil, fmt.Errorf("containerd config %s already defines plugins.%q.containerd.runtimes.%s: %w; "+
			"run the install with %s to replace that table (older guides added one by hand; the file "+
			"is kept as %s.reaper-backup), or remove that table by hand",
			path, pluginID, foreign[0], ErrForeignHandler, MigrateFlag, path)
	}

	migrated, err := withoutHandlerTables(path, content, version, foreign)
	if err != nil {
		return nil, nil, err
	}
	return migrated, foreign, nil
}

// handlerNames returns the names of handlers.
func handlerNames(handlers []Handler) []string {
	names := make([]string, 0, len(handlers))
	for _, handler := range handlers {
		names = append(names, handler.Name)
	}
	return names
}

// withoutHandlerTables returns content without the tables at or below
// plugins.<pluginID>.containerd.runtimes.<name> for each name: each goes from its header
// line to the end of its last key line, so comments around it stay. It fails when the
// handlers are still defined afterwards, for example as dotted keys of a parent table.
func withoutHandlerTables(path string, content []byte, version int64, names []string) ([]byte, error) {
	pluginID, err := RuntimePluginID(version)
	if err != nil {
		return nil, err
	}

	var p unstable.Parser
	p.Reset(content)

	var cut [][2]int
	inside := false
	for p.NextExpression() {
		expr := p.Expression()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, offset := keyParts(expr)
			inside = isHandlerTable(parts, pluginID, names)
			if inside {
				start := bytes.LastIndexByte(content[:offset], '\n') + 1
				cut = append(cut, [2]int{start, lineEnd(content, offset)})
			}
		case unstable.KeyValue:
			if inside {
				cut[len(cut)-1][1] = lineEnd(content, int(expr.Raw.Offset+expr.Raw.Length))
			}
		}
	}
	if err := p.Error(); err != nil {
		return nil, decodeError(path, err)
	}

	out := make([]byte, 0, len(content))
	last := 0
	for _, c := range cut {
		out = append(out, content[last:c[0]]...)
		last = c[1]
	}
	out = append(out, content[last:]...)

	left, err := definedHandlers(path, out, version, names)
	if err != nil {
		return nil, err
	}
	if len(left) > 0 {
		return nil, fmt.Errorf("containerd config %s defines the runtime handler %s outside a table of its own, "+
			"which %s cannot take out; remove it by hand", path, left[0], MigrateFlag)
	}
	return out, nil
}

// keyParts returns the parts of a table header's key and the offset of its first part.
func keyParts(expr *unstable.Node) ([]string, int) {
	var parts []string
	offset := -1
	key := expr.Key()
	for key.Next() {
		node := key.Node()
		if offset < 0 {
			offset = int(node.Raw.Offset)
		}
		parts = append(parts, string(node.Data))
	}
	return parts, max(offset, 0)
}

// isHandlerTable reports whether a table's key is a handler of names or below one.
func isHandlerTable(parts []string, pluginID string, names []string) bool {
	prefix := []string{"plugins", pluginID, "containerd", "runtimes"}
	if len(parts) <= len(prefix) || !slices.Equal(parts[:len(prefix)], prefix) {
		return false
	}
	return slices.Contains(names, parts[len(prefix)])
}

// checkImportedHandlers fails when a file the root config imports, other than the
// installer's drop-in at own, defines one of the handlers. containerd would merge it
// with the drop-in, and the installer does not edit files it did not write.
func checkImportedHandlers(cfg *ContainerdConfig, handlers []Handler, own string) error {
	patterns := make([]string, 0, len(cfg.Imports))
	for _, entry := range cfg.Imports {
		patterns = append(patterns, cfg.importPath(entry))
	}
	if cfg.DropInDir != "" {
		// The distribution merges the drop-ins of DropInDir into a file the root
		// imports, which then holds Reaper's tables too: check the drop-ins instead.
		patterns = []string{filepath.Join(cfg.DropInDir, "*.toml")}
	}

	for _, pattern := range patterns {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("containerd config %s: import %q: %w", cfg.Path, pattern, err)
		}
		for _, path := range paths {
			if path == own {
				continue
			}
			if err := checkImportedFile(path, handlers); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkImportedFile fails when the imported file at path defines one of the handlers.
func checkImportedFile(path string, handlers []Handler) error {
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read imported config %s: %w", path, err)
	}
	imported, err := parseContainerdConfig(path, content)
	if err != nil {
		return err
	}

	foreign, err := definedHandlers(path, content, imported.Version, handlerNames(handlers))
	if err != nil || len(foreign) == 0 {
		return err
	}
	return fmt.Errorf("containerd config %s, which the root config imports, already defines the runtime handler %s: %w; "+
		"remove that table from it by hand, reaper-installer does not edit files it did not write", path, foreign[0], ErrForeignHandler)
}
