package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// defaultRoot is the state root when neither --root nor REAPER_RUNTIME_ROOT is set.
const defaultRoot = "/run/reaper"

// globalOptions are the flags every subcommand shares.
type globalOptions struct {
	root      string
	logPath   string
	logFormat string
	logger    *slog.Logger
}

func newRootCommand() *cobra.Command {
	opts := &globalOptions{}
	cmd := &cobra.Command{
		Use:   "reaper-runtime",
		Short: "Run OCI bundles as plain host processes",
		Long: `reaper-runtime runs the process of an OCI bundle directly on the host: host
filesystem, host binaries, host PID namespace. It ignores the bundle's root
filesystem. The process gets a mount namespace of its own with the bundle's bind
mounts, and the network namespace the bundle names. Settings that would change
the host (hostname, sysctls outside a network namespace of its own, namespaces
other than mount and network) are never applied.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return opts.setupLogger()
		},
	}

	root := os.Getenv("REAPER_RUNTIME_ROOT")
	if root == "" {
		root = defaultRoot
	}
	flags := cmd.PersistentFlags()
	flags.StringVar(&opts.root, "root", root, "state directory of containers (env REAPER_RUNTIME_ROOT)")
	flags.StringVar(&opts.logPath, "log", "", "write logs to this file instead of stderr")
	flags.StringVar(&opts.logFormat, "log-format", "text", "log format: text or json")

	cmd.AddCommand(
		newCreateCommand(opts),
		newStartCommand(opts),
		newStateCommand(opts),
		newKillCommand(opts),
		newDeleteCommand(opts),
		newListCommand(opts),
	)
	return cmd
}

func (o *globalOptions) setupLogger() error {
	var out io.Writer = os.Stderr
	if o.logPath != "" {
		file, err := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("failed to open the log file %s: %w", o.logPath, err)
		}
		out = file
	}

	switch o.logFormat {
	case "text":
		o.logger = slog.New(slog.NewTextHandler(out, nil))
	case "json":
		o.logger = slog.New(slog.NewJSONHandler(out, nil))
	default:
		return fmt.Errorf("invalid --log-format %q: use text or json", o.logFormat)
	}
	return nil
}
