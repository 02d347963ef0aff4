package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"reaper.dev/reaper/runtime"
	"reaper.dev/reaper/runtime/initproc"
)

func newCreateCommand(opts *globalOptions) *cobra.Command {
	var bundle, pidFile, protectedRoot string
	cmd := &cobra.Command{
		Use:   "create [flags] CONTAINER_ID",
		Short: "Create a container from an OCI bundle; its process waits for start",
		Example: `  reaper-runtime create --bundle /tmp/bundle demo
  reaper-runtime start demo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			protection, err := protectionFor(protectedRoot)
			if err != nil {
				return err
			}

			absBundle, err := filepath.Abs(bundle)
			if err != nil {
				return fmt.Errorf("invalid --bundle %q: %w", bundle, err)
			}

			container, err := runtime.Create(runtime.CreateOptions{
				Root:       opts.root,
				ID:         args[0],
				Bundle:     absBundle,
				Executable: "/proc/self/exe",
				HostView:   true,
				Protection: protection,
				Stdin:      os.Stdin,
				Stdout:     os.Stdout,
				Stderr:     os.Stderr,
			})
			if err != nil {
				return err
			}
			opts.logger.Info("created container", "id", container.ID, "pid", container.Pid, "bundle", container.Bundle)

			if pidFile != "" {
				return writePidFile(pidFile, container.Pid)
			}
			return nil
		},
	}

	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "path to the OCI bundle (the folder holding config.json)")
	cmd.Flags().StringVar(&pidFile, "pid-file", "", "write the container's host pid to this file")
	cmd.Flags().StringVar(&protectedRoot, "protected", "", `run in the protected mode, with the host root behind an "overlay" or "read-only" (default: not protected)`)
	return cmd
}

// protectionFor returns the protected mode that --protected requests.
func protectionFor(root string) (*initproc.Protection, error) {
	switch root {
	case "":
		return nil, nil
	case initproc.RootOverlay, initproc.RootReadOnly:
		return &initproc.Protection{Root: root, MaskedPaths: runtime.DefaultMaskedPaths}, nil
	}
	return nil, fmt.Errorf("invalid --protected %q: use %q or %q", root, initproc.RootOverlay, initproc.RootReadOnly)
}

func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("failed to write the pid file %s: %w", path, err)
	}

	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("failed to write the pid file %s: %w", path, err)
	}
	return nil
}
