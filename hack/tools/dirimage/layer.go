package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"reaper.dev/reaper/hack/tools/internal/imagebuild"
)

// folderLayer returns a layer holding every entry under dir, with paths relative to dir.
// Modes, setuid and setgid bits included, come from the files, owners are always root, and
// hard links stay hard links.
func folderLayer(dir string) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := writeFolderTar(&buf, dir); err != nil {
		return nil, fmt.Errorf("archive folder %s: %w", dir, err)
	}
	layer, err := imagebuild.LayerFromTar(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("create layer from folder %s: %w", dir, err)
	}
	return layer, nil
}

// inode identifies a file across its hard links.
type inode struct{ device, number uint64 }

// writeFolderTar writes the tree under dir to w as a tar stream. filepath.WalkDir visits entries
// in lexical order, so the stream depends only on the names, contents, modes and links of the
// files.
func writeFolderTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	// firstNames maps each inode with more than one link to the name of its first entry, which
	// carries the content. Its later names become hard link entries.
	firstNames := map[inode]string{}
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		return writeEntry(tw, path, filepath.ToSlash(rel), entry, firstNames)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, path, name string, entry fs.DirEntry, firstNames map[inode]string) error {
	info, err := entry.Info()
	if err != nil {
		return err
	}
	firstName := ""
	if stat, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode().IsRegular() && stat.Nlink > 1 {
		key := inode{device: stat.Dev, number: stat.Ino}
		firstName = firstNames[key]
		if firstName == "" {
			firstNames[key] = name
		}
	}
	var link string
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	case info.Mode().IsDir(), info.Mode().IsRegular():
	default:
		return fmt.Errorf("%s has file type %s; only folders, regular files and symbolic links fit in a layer", path, info.Mode().Type())
	}

	header, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return fmt.Errorf("tar header for %s: %w", path, err)
	}
	header.Name = name
	if info.IsDir() {
		header.Name += "/"
	}
	header.Uid, header.Gid = 0, 0
	header.Uname, header.Gname = "", ""
	header.ModTime = imagebuild.Epoch
	header.AccessTime, header.ChangeTime = time.Time{}, time.Time{}
	header.Format = tar.FormatPAX
	if firstName != "" {
		header.Typeflag = tar.TypeLink
		header.Linkname = firstName
		header.Size = 0
	}
	if err := tw.WriteHeader(header); err != nil {
		return fmt.Errorf("write tar header for %s: %w", path, err)
	}
	if header.Typeflag != tar.TypeReg {
		return nil
	}

	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	if _, err := io.Copy(tw, file); err != nil {
		return fmt.Errorf("write %s into the layer: %w", path, err)
	}
	return nil
}
