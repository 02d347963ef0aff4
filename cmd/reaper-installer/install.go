package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"reaper.dev/reaper/installer"
)

func newInstallCommand() *cobra.Command {
	var (
		host      hostFlags
		sourceDir string
		handlers  []string
		protected []string
		root      string
		migrate   bool
	)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Copy the Reaper binaries and register the runtime handlers with containerd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := host.options()
			if err != nil {
				return err
			}
			opts.SourceDir = sourceDir
			if opts.SourceDir == "" {
				opts.SourceDir = executableDir()
			}
			opts.Handlers = slices.DeleteFunc(handlers, func(name string) bool { return name == "" })
			if len(opts.Handlers) == 0 {
				return fmt.Errorf("--handler names no runtime handler: pass one, such as %s", installer.DefaultHandler)
			}
			// An empty --protected-handler registers no protected handler.
			opts.ProtectedHandlers = slices.DeleteFunc(protected, func(name string) bool { return name == "" })
			if err := checkProtectedRoot(root, opts.ProtectedHandlers); err != nil {
				return err
			}
			opts.ProtectedRoot = root
			opts.MigrateForeignHandlers = migrate
			if err := host.host.Detect(cmd.Context(), &opts); err != nil {
				return err
			}

			return host.runPlan(cmd, opts, func(opts installer.Options) (installer.Plan, error) {
				return installer.PlanInstall(opts)
			})
		},
	}

	host.register(cmd.Flags())
	cmd.Flags().StringVar(&sourceDir, "source-dir", "",
		"directory containing containerd-shim-reaper-v2 and reaper-runtime to install (default: the directory of this executable)")
	cmd.Flags().StringSliceVar(&handlers, "handler", []string{installer.DefaultHandler},
		"CRI runtime handler to register; repeat the flag or separate names with commas for more than one")
	cmd.Flags().StringSliceVar(&protected, "protected-handler", []string{installer.DefaultProtectedHandler},
		"CRI runtime handler to register in the protected mode; empty for none")
	cmd.Flags().StringVar(&root, "protected-root", "",
		`host root of the protected handlers: "overlay", whose writes vanish with the container, or "read-only" (default: the shim's, overlay)`)
	cmd.Flags().BoolVar(&migrate, strings.TrimPrefix(installer.MigrateFlag, "--"), false,
		"replace runtime handler tables of the same names that were added by hand, such as a reaper table from older guides; the config's original stays in its .reaper-backup copy")
	return cmd
}

// checkProtectedRoot rejects a --protected-root value the shim does not accept, or one
// given without a protected handler to apply it to.
func checkProtectedRoot(root string, handlers []string) error {
	if root == "" {
		return nil
	}
	if !slices.Contains(installer.ProtectedRoots, root) {
		return fmt.Errorf("invalid --protected-root %q: use %s", root, strings.Join(installer.ProtectedRoots, " or "))
	}
	if len(handlers) == 0 {
		return fmt.Errorf("--protected-root %s has no effect without a protected handler: set --protected-handler too", root)
	}
	return nil
}
