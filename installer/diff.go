package installer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// writeFileDiff writes the unified diff that turns the file at path into planned: nil
// planned for a removal, and a missing file counts as empty. It writes nothing when
// the file already has that content.
func writeFileDiff(w io.Writer, path string, planned []byte) error {
	current, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}

	from, to := path, path
	if current == nil {
		from = "/dev/null"
	}
	if planned == nil {
		to = "/dev/null"
	}

	diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        lines(current),
		B:        lines(planned),
		FromFile: from,
		ToFile:   to,
		Context:  3,
	})
	if err != nil {
		return fmt.Errorf("compare %s with the planned content: %w", path, err)
	}
	_, err = io.WriteString(w, diff)
	return err
}

// lines splits content into lines that each end with a newline, one added to a last line
// without, and none for empty content.
func lines(content []byte) []string {
	if len(content) == 0 {
		return nil
	}

	split := strings.SplitAfter(string(content), "\n")
	last := len(split) - 1
	if split[last] == "" {
		return split[:last]
	}
	split[last] += "\n"
	return split
}
