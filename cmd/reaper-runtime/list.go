package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"reaper.dev/reaper/runtime"
)

func newListCommand(opts *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the containers under the state root",
		Example: "  reaper-runtime list --format json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			containers, err := runtime.List(opts.root)
			if err != nil {
				return err
			}

			switch format {
			case "table":
				return printTable(containers)
			case "json":
				states := make([]specs.State, 0, len(containers))
				for _, container := range containers {
					states = append(states, container.OCIState())
				}
				return printJSON(states)
			default:
				return fmt.Errorf("invalid --format %q: use table or json", format)
			}
		},
	}

	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	return cmd
}

func printTable(containers []*runtime.Container) error {
	writer := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(writer, "ID\tPID\tSTATUS\tBUNDLE\tCREATED")
	for _, container := range containers {
		state := container.OCIState()
		fmt.Fprintf(writer, "%s\t%d\t%s\t%s\t%s\n",
			state.ID, state.Pid, state.Status, state.Bundle, container.Created.Format(time.RFC3339))
	}
	return writer.Flush()
}
