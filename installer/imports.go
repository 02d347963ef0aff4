package installer

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// importMarker ends the imports line the installer adds to a root config, so that
// uninstall removes exactly that line.
const importMarker = "# added by reaper-installer; `reaper-installer uninstall` removes this line"

// DefaultDropInDir is the folder, relative to the root config's, that gets the drop-in
// when the root config imports none.
const DefaultDropInDir = "conf.d"

// spliceImport returns content with a top-level `imports` line for dir/*.toml added
// after the line of the `version` key, and every other byte as it was. It fails when
// the file has an `imports` key already or no top-level `version` key.
func spliceImport(path string, content []byte, dir string) ([]byte, error) {
	end, err := versionLineEnd(path, content)
	if err != nil {
		return nil, err
	}

	newline := lineEnding(content)
	pattern := strconv.Quote(filepath.Join(dir, "*.toml"))
	line := "imports = [" + pattern + "] " + importMarker + newline

	var out bytes.Buffer
	out.Write(content[:end])
	if end > 0 && content[end-1] != '\n' {
		// The version line is the last one and has no line ending: the new line goes
		// after it, without one, so that uninstall can restore every byte.
		out.WriteString(newline)
		line = strings.TrimSuffix(line, newline)
	}
	out.WriteString(line)
	out.Write(content[end:])
	return out.Bytes(), nil
}

// versionLineEnd returns the offset just after the line that holds the top-level
// `version` key, located by parsing so that a comment or string that mentions it does
// not count. It fails when the file has a top-level `imports` key already, which a
// second one would break.
func versionLineEnd(path string, content []byte) (int, error) {
	var p unstable.Parser
	p.Reset(content)

	end := -1
	for p.NextExpression() {
		expr := p.Expression()
		if expr.Kind == unstable.Table || expr.Kind == unstable.ArrayTable {
			break
		}
		if expr.Kind != unstable.KeyValue {
			continue
		}

		key := expr.Key()
		if !key.Next() {
			continue
		}
		name := string(key.Node().Data)
		if key.Next() {
			continue
		}
		switch name {
		case "imports":
			return 0, fmt.Errorf("containerd config %s has an imports key but none of its entries is a folder glob such as %q; add one by hand", path, "conf.d/*.toml")
		case "version":
			end = lineEnd(content, int(expr.Raw.Offset+expr.Raw.Length))
		}
	}
	if err := p.Error(); err != nil {
		return 0, decodeError(path, err)
	}
	if end < 0 {
		return 0, fmt.Errorf("containerd config %s has no top-level version key: %w", path, ErrUnsupportedVersion)
	}
	return end, nil
}

// lineEnd returns the offset just after the line ending that follows offset, or the
// end of content.
func lineEnd(content []byte, offset int) int {
	if i := bytes.IndexByte(content[offset:], '\n'); i >= 0 {
		return offset + i + 1
	}
	return len(content)
}

// withoutImport returns content without the line spliceImport added, and whether it
// had one.
func withoutImport(content []byte) ([]byte, bool) {
	marker := []byte(" " + importMarker)
	i := bytes.Index(content, marker)
	if i < 0 {
		return content, false
	}

	start := bytes.LastIndexByte(content[:i], '\n') + 1
	end := i + len(marker)
	if j := bytes.IndexByte(content[end:], '\n'); j >= 0 {
		end += j + 1
	} else {
		// The line is the last one, after a line ending spliceImport added.
		end = len(content)
		start -= len(lineEnding(content[:start]))
		start = max(start, 0)
	}

	out := make([]byte, 0, len(content)-(end-start))
	out = append(out, content[:start]...)
	return append(out, content[end:]...), true
}
