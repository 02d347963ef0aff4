package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"reaper.dev/reaper/runtime"
)

func newStateCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "state CONTAINER_ID",
		Short:   "Print the OCI state of a container as JSON",
		Example: "  reaper-runtime state demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			container, err := runtime.Load(opts.root, args[0])
			if err != nil {
				return err
			}
			return printJSON(container.OCIState())
		},
	}
}

func printJSON(value any) error {
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	return encoder.Encode(value)
}
