package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"reaper.dev/reaper/installer"
)

// criTimeout bounds the CRI Status call of the status command.
const criTimeout = 5 * time.Second

// nodeStatus is the report of `status`: the installer's files and the handlers containerd serves.
type nodeStatus struct {
	*installer.Status
	Installed bool `json:"installed"`
	// Served are the runtime handlers that containerd's CRI lists, and ServedError why
	// they could not be read.
	Served      []string `json:"servedHandlers"`
	ServedError string   `json:"servedError,omitempty"`
}

func newStatusCommand() *cobra.Command {
	var (
		host   hostFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print what the installer put on this host and which handlers containerd serves",
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
			status := nodeStatus{Status: files, Installed: files.Installed()}
			status.Served, err = servedHandlers(cmd.Context(), onHost(host.hostRoot, host.containerdSocket))
			if err != nil {
				status.ServedError = err.Error()
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

// servedHandlers requests the runtime handlers from containerd's CRI: the runtimeHandlers of
// the Status response (containerd 2.x), or the runtimes of its verbose config (1.7).
func servedHandlers(ctx context.Context, socket string) ([]string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()

	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", socket, err)
	}
	defer conn.Close()

	resp, err := runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("CRI Status of containerd at %s: %w", socket, err)
	}

	var handlers []string
	for _, handler := range resp.GetRuntimeHandlers() {
		if handler.GetName() != "" {
			handlers = append(handlers, handler.GetName())
		}
	}
	if len(handlers) == 0 {
		handlers = configRuntimes(resp.GetInfo()["config"])
	}
	sort.Strings(handlers)
	return handlers, nil
}

// configRuntimes returns the runtime names of the verbose CRI config of containerd 1.7.
func configRuntimes(config string) []string {
	var parsed struct {
		Containerd struct {
			Runtimes map[string]json.RawMessage `json:"runtimes"`
		} `json:"containerd"`
	}
	if json.Unmarshal([]byte(config), &parsed) != nil {
		return nil
	}

	var names []string
	for name := range parsed.Containerd.Runtimes {
		names = append(names, name)
	}
	return names
}

func (s nodeStatus) print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "installed:         %t\n", s.Installed)
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

// onHost returns where a host path is below the host root.
func onHost(root, path string) string {
	if root == "" || root == "/" {
		return path
	}
	return filepath.Join(root, path)
}
