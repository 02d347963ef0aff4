package installer

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pelletier/go-toml/v2"
)

// Schema versions 1 and 2 are read by containerd 1.x too, which merges imports one
// plugin at a time: a drop-in's CRI plugin table would replace the root's whole CRI
// section. So with these versions the installer appends its tables to the root config,
// as a block between these marker lines, and uninstall removes exactly that block.
const (
	rootBlockBegin = "# BEGIN reaper-installer: Reaper's runtime handlers; `reaper-installer uninstall` removes this block."
	rootBlockEnd   = "# END reaper-installer"
)

// ErrForeignHandler is returned when the config already defines a runtime handler of
// the same name that the installer did not write.
var ErrForeignHandler = errors.New("runtime handler defined outside reaper-installer")

// usesRootBlock reports whether a config of this schema version gets its handlers
// in the root config rather than in a drop-in.
func usesRootBlock(version int64) bool {
	return version <= 2
}

// lineEnding returns the line ending of content: CRLF when it uses any, else LF.
func lineEnding(content []byte) string {
	if bytes.Contains(content, []byte("\r\n")) {
		return "\r\n"
	}
	return "\n"
}

// renderRootBlock returns the block that registers handlers, with the given line ending.
func renderRootBlock(version int64, handlers []Handler, installDir, newline string) ([]byte, error) {
	tables, err := renderHandlerTables(version, handlers, installDir)
	if err != nil {
		return nil, err
	}

	var out bytes.Buffer
	out.WriteString(newline + rootBlockBegin + newline)
	out.Write(bytes.ReplaceAll(bytes.TrimLeft(tables, "\n"), []byte("\n"), []byte(newline)))
	out.WriteString(rootBlockEnd + newline)
	return out.Bytes(), nil
}

// findRootBlock returns the start and end of the installer's block in content, with
// found false when there is none.
func findRootBlock(content []byte) (start, end int, found bool, err error) {
	begin := bytes.Index(content, []byte(rootBlockBegin))
	if begin < 0 {
		return 0, 0, false, nil
	}

	endMarker := bytes.Index(content[begin:], []byte(rootBlockEnd))
	if endMarker < 0 {
		return 0, 0, false, fmt.Errorf("the reaper-installer block has a begin marker but no %q line; "+
			"restore the file from its .reaper-backup copy or remove the block by hand", rootBlockEnd)
	}
	end = begin + endMarker + len(rootBlockEnd)

	// The block owns the line ending before its begin marker and after its end marker.
	start = begin
	switch {
	case bytes.HasSuffix(content[:start], []byte("\r\n")):
		start -= 2
	case bytes.HasSuffix(content[:start], []byte("\n")):
		start--
	}
	switch {
	case bytes.HasPrefix(content[end:], []byte("\r\n")):
		end += 2
	case bytes.HasPrefix(content[end:], []byte("\n")):
		end++
	}
	return start, end, true, nil
}

// withoutRootBlock returns content with the installer's block removed.
func withoutRootBlock(content []byte) ([]byte, bool, error) {
	start, end, found, err := findRootBlock(content)
	if err != nil || !found {
		return content, false, err
	}

	out := make([]byte, 0, len(content)-(end-start))
	out = append(out, content[:start]...)
	out = append(out, content[end:]...)
	return out, true, nil
}

// spliceRootBlock returns the root config with the installer's block (re)placed at
// its end. It fails when the rest of the file already defines one of the handlers,
// or when the result is not valid TOML, for example when the file defines the
// runtimes as an inline table that a table header cannot extend.
func spliceRootBlock(path string, content []byte, version int64, handlers []Handler, installDir string) ([]byte, error) {
	base, _, err := withoutRootBlock(content)
	if err != nil {
		return nil, fmt.Errorf("containerd config %s: %w", path, err)
	}

	if err := checkForeignHandlers(path, base, version, handlers); err != nil {
		return nil, err
	}

	block, err := renderRootBlock(version, handlers, installDir, lineEnding(base))
	if err != nil {
		return nil, fmt.Errorf("containerd config %s: %w", path, err)
	}

	spliced := append(append([]byte{}, base...), block...)
	var check map[string]any
	if err := toml.Unmarshal(spliced, &check); err != nil {
		return nil, fmt.Errorf("containerd config %s: adding the runtime handler tables at its end gives invalid TOML (%w); "+
			"the file may define the runtimes as an inline table, which must be rewritten as tables first", path, err)
	}
	return spliced, nil
}

// checkForeignHandlers fails when base already defines one of the handlers.
func checkForeignHandlers(path string, base []byte, version int64, handlers []Handler) error {
	defined, err := definedHandlers(path, base, version, handlerNames(handlers))
	if err != nil || len(defined) == 0 {
		return err
	}

	pluginID, _ := RuntimePluginID(version)
	return fmt.Errorf("containerd config %s already defines plugins.%q.containerd.runtimes.%s: %w; "+
		"remove that table (older guides added one by hand) and install again", path, pluginID, defined[0], ErrForeignHandler)
}

// definedHandlers returns the names among names that content defines as runtimes of the
// CRI plugin of its schema version.
func definedHandlers(path string, content []byte, version int64, names []string) ([]string, error) {
	pluginID, err := RuntimePluginID(version)
	if err != nil {
		return nil, fmt.Errorf("containerd config %s: %w", path, err)
	}

	var doc struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]any `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(content, &doc); err != nil {
		return nil, decodeError(path, err)
	}

	var defined []string
	for _, name := range names {
		if _, ok := doc.Plugins[pluginID].Containerd.Runtimes[name]; ok {
			defined = append(defined, name)
		}
	}
	return defined, nil
}
