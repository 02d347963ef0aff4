package installer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criTimeout bounds each CRI call the installer makes.
const criTimeout = 5 * time.Second

// Containerd is the state that a running containerd reports through its CRI API.
type Containerd struct {
	// Version is containerd's version, such as "v2.4.2".
	Version string `json:"version"`
	// Handlers are the runtime handlers its CRI serves, sorted.
	Handlers []string `json:"handlers"`
	// CgroupDriver is the cgroup driver of its CRI RuntimeConfig response, for the
	// kubelet, or empty when it does not implement that call (containerd 1.x).
	CgroupDriver string `json:"cgroupDriver,omitempty"`
}

// Major returns the major version, or 0 when Version does not start with one.
func (c *Containerd) Major() int {
	var major int
	if _, err := fmt.Sscanf(strings.TrimPrefix(c.Version, "v"), "%d", &major); err != nil {
		return 0
	}
	return major
}

// QueryContainerd requests from the containerd at socket, a path in the installer's view, its
// version, served handlers and cgroup driver.
func QueryContainerd(ctx context.Context, socket string) (*Containerd, error) {
	info := &Containerd{}
	err := withCRI(ctx, socket, func(ctx context.Context, client runtimeapi.RuntimeServiceClient) error {
		version, err := client.Version(ctx, &runtimeapi.VersionRequest{})
		if err != nil {
			return fmt.Errorf("CRI Version of containerd at %s: %w", socket, err)
		}
		info.Version = version.GetRuntimeVersion()

		if info.Handlers, err = servedHandlers(ctx, client); err != nil {
			return fmt.Errorf("CRI Status of containerd at %s: %w", socket, err)
		}
		if info.CgroupDriver, err = criCgroupDriver(ctx, client); err != nil {
			return fmt.Errorf("CRI RuntimeConfig of containerd at %s: %w", socket, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

// QueryHandlers returns the runtime handlers that the CRI of the containerd at socket
// serves.
func QueryHandlers(ctx context.Context, socket string) ([]string, error) {
	var handlers []string
	err := withCRI(ctx, socket, func(ctx context.Context, client runtimeapi.RuntimeServiceClient) error {
		var err error
		if handlers, err = servedHandlers(ctx, client); err != nil {
			return fmt.Errorf("CRI Status of containerd at %s: %w", socket, err)
		}
		return nil
	})
	return handlers, err
}

// withCRI calls fn with a CRI client of the containerd at socket, within criTimeout.
func withCRI(ctx context.Context, socket string, fn func(context.Context, runtimeapi.RuntimeServiceClient) error) error {
	ctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()

	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to containerd at %s: %w", socket, err)
	}
	defer conn.Close()
	return fn(ctx, runtimeapi.NewRuntimeServiceClient(conn))
}

// servedHandlers returns the runtimeHandlers of the CRI Status response (containerd 2.x),
// or the runtimes of its verbose config (1.7).
func servedHandlers(ctx context.Context, client runtimeapi.RuntimeServiceClient) ([]string, error) {
	resp, err := client.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return nil, err
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

	names := make([]string, 0, len(parsed.Containerd.Runtimes))
	for name := range parsed.Containerd.Runtimes {
		names = append(names, name)
	}
	return names
}

// criCgroupDriver returns the cgroup driver of the CRI RuntimeConfig call, or "" when
// containerd does not implement it.
func criCgroupDriver(ctx context.Context, client runtimeapi.RuntimeServiceClient) (string, error) {
	resp, err := client.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if status.Code(err) == codes.Unimplemented {
		return "", nil
	}
	if err != nil {
		return "", err
	}

	switch resp.GetLinux().GetCgroupDriver() {
	case runtimeapi.CgroupDriver_SYSTEMD:
		return CgroupDriverSystemd, nil
	default:
		return CgroupDriverCgroupfs, nil
	}
}

// PodSandbox is a pod sandbox that containerd's CRI lists.
type PodSandbox struct {
	Namespace string
	Name      string
	Handler   string
}

// String returns the pod as NAMESPACE/NAME.
func (p PodSandbox) String() string { return p.Namespace + "/" + p.Name }

// DescribePods lists at most limit of pods as NAMESPACE/NAME, separated by commas, followed by
// the count of the others.
func DescribePods(pods []PodSandbox, limit int) string {
	names := make([]string, 0, limit)
	for _, pod := range pods[:min(len(pods), limit)] {
		names = append(names, pod.String())
	}
	list := strings.Join(names, ", ")
	if len(pods) > limit {
		list += fmt.Sprintf(" and %d more", len(pods)-limit)
	}
	return list
}

// ReadySandboxes returns the ready pod sandboxes of the containerd at socket, a path in the
// installer's view, whose runtime handler is one of handlers, sorted by namespace and name.
func ReadySandboxes(ctx context.Context, socket string, handlers []string) ([]PodSandbox, error) {
	var pods []PodSandbox
	err := withCRI(ctx, socket, func(ctx context.Context, client runtimeapi.RuntimeServiceClient) error {
		resp, err := client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
			State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		}})
		if err != nil {
			return fmt.Errorf("CRI ListPodSandbox of containerd at %s: %w", socket, err)
		}
		for _, sandbox := range resp.GetItems() {
			if slices.Contains(handlers, sandbox.GetRuntimeHandler()) {
				pods = append(pods, PodSandbox{Namespace: sandbox.GetMetadata().GetNamespace(), Name: sandbox.GetMetadata().GetName(), Handler: sandbox.GetRuntimeHandler()})
			}
		}
		return nil
	})
	sort.Slice(pods, func(i, j int) bool { return pods[i].String() < pods[j].String() })
	return pods, err
}
