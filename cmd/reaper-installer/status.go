package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"reaper.dev/reaper/installer"
)

// nodeStatus is the report of `status`: the installer's files, what containerd serves
// and the kubelet's cgroup driver.
type nodeStatus struct {
	*installer.Status
	Installed bool   `json:"installed"`
	Distro    string `json:"distro"`
	Socket    string `json:"socket"`
	// Containerd is the state containerd's CRI reports, and ServedError the error of
	// that request.
	Containerd   *installer.Containerd  `json:"containerd,omitempty"`
	Served       []string               `json:"servedHandlers"`
	ServedError  string                 `json:"servedError,omitempty"`
	CgroupDriver installer.CgroupDriver `json:"cgroupDriver"`
}

func newStatusCommand() *cobra.Command {
	var (
		host   hostFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print what the installer put on this host, its drift, and what containerd serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("invalid --output %q: use text or json", output)
			}
			opts, err := host.options()
			if err != nil {
				return err
			}

			files, err := installer.ReadStatus(opts)
			if err != nil {
				return err
			}
			status := nodeStatus{Status: files, Installed: files.Installed(), Distro: host.host.Distro.Name, Socket: host.host.Config.ContainerdSocket}
			if err := host.host.Detect(cmd.Context(), &opts); err != nil {
				return err
			}
			host.host.AddCgroupDriverDrift(files)
			status.CgroupDriver = host.host.CgroupDriver
			status.Containerd = opts.Containerd
			if opts.Containerd != nil {
				status.Served = opts.Containerd.Handlers
			} else {
				status.ServedError = host.host.ContainerdErr.Error()
			}

			if output == "json" {
				encoder := json.NewEncoder(cmd.OutOrStdout())
				encoder.SetIndent("", "  ")
				return encoder.Encode(status)
			}
			return status.print(cmd.OutOrStdout())
		},
	}

	host.registerPaths(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func (s nodeStatus) print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "installed:         %t\n", s.Installed)
	fmt.Fprintf(&b, "distribution:      %s\n", s.Distro)
	fmt.Fprintf(&b, "containerd socket: %s\n", s.Socket)
	if s.Containerd != nil {
		fmt.Fprintf(&b, "containerd:        %s\n", s.Containerd.Version)
	}
	fmt.Fprintf(&b, "cgroup driver:     %s (from %s)\n", s.CgroupDriver.Driver, s.CgroupDriver.Source)
	fmt.Fprintf(&b, "containerd config: %s (version %d)\n", s.ContainerdConfig, s.ConfigVersion)
	switch {
	case s.DropIn != "":
		fmt.Fprintf(&b, "drop-in:           %s\n", s.DropIn)
	case s.RootBlock:
		fmt.Fprintf(&b, "handler tables:    in the root config\n")
	case s.Template != "":
		fmt.Fprintf(&b, "handler tables:    in the template %s\n", s.Template)
	}
	if s.RootImport {
		fmt.Fprintf(&b, "imports line:      in the root config\n")
	}
	fmt.Fprintf(&b, "handlers:          %s\n", listOrNone(s.Handlers))
	if len(s.ForeignHandlers) > 0 {
		fmt.Fprintf(&b, "hand-written:      %s (install fails; %s replaces them)\n", strings.Join(s.ForeignHandlers, ", "), installer.MigrateFlag)
	}
	for _, binary := range s.Binaries {
		state := "missing"
		if binary.SHA256 != "" {
			state = "sha256 " + binary.SHA256
		}
		fmt.Fprintf(&b, "binary:            %s (%s)\n", binary.Path, state)
	}
	if s.Link != "" {
		fmt.Fprintf(&b, "shim link:         %s\n", s.Link)
	}
	if s.Record != "" {
		fmt.Fprintf(&b, "install record:    %s\n", s.Record)
	}
	for _, drift := range s.Drift {
		fmt.Fprintf(&b, "drift:             %s; run install to repair it\n", drift)
	}

	if s.ServedError != "" {
		fmt.Fprintf(&b, "containerd serves: unknown: %s\n", s.ServedError)
	} else {
		fmt.Fprintf(&b, "containerd serves: %s\n", listOrNone(s.Served))
		if missing := notServed(s.Handlers, s.Served); len(missing) > 0 {
			fmt.Fprintf(&b, "not served yet:    %s (restart containerd to load the config)\n", strings.Join(missing, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func notServed(handlers, served []string) []string {
	var missing []string
	for _, handler := range handlers {
		if !slices.Contains(served, handler) {
			missing = append(missing, handler)
		}
	}
	return missing
}

func listOrNone(values []string) string {
	if len(values) == 0 {
		return "none"
	}
	return strings.Join(values, ", ")
}
