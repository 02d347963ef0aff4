package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// callTimeout bounds each CRI call, so that a hung shim fails the run instead of hanging it.
	callTimeout = 60 * time.Second
	// execTimeoutSeconds is the ExecSync timeout that containerd enforces on the command.
	execTimeoutSeconds = 20
	// pollInterval is the wait between two ContainerStatus calls while waiting for a state.
	pollInterval = 10 * time.Millisecond
	// podNamespace is the Kubernetes namespace in the metadata of every pod bench creates.
	podNamespace = "reaper-bench"
)

// criClient is a CRI runtime client for the containerd under test.
type criClient struct {
	conn    *grpc.ClientConn
	runtime runtimeapi.RuntimeServiceClient
}

// pod is a pod sandbox that bench created and has not removed yet.
type pod struct {
	id      string
	handler string
	config  *runtimeapi.PodSandboxConfig
}

func newCRIClient(address string) (*criClient, error) {
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("create a CRI client for %s: %w", address, err)
	}
	return &criClient{conn: conn, runtime: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

func (c *criClient) close() {
	c.conn.Close()
}

// version returns the runtime name and version that containerd reports, such as
// "containerd v2.4.2".
func (c *criClient) version(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "", fmt.Errorf("CRI Version failed: %w", err)
	}
	return resp.GetRuntimeName() + " " + resp.GetRuntimeVersion(), nil
}

func (c *criClient) runPod(ctx context.Context, handler string, config *runtimeapi.PodSandboxConfig) (*pod, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config, RuntimeHandler: handler})
	if err != nil {
		return nil, fmt.Errorf("RunPodSandbox %s with handler %s failed: %w", config.GetMetadata().GetName(), handler, err)
	}
	return &pod{id: resp.GetPodSandboxId(), handler: handler, config: config}, nil
}

// removePod stops and removes a pod with all its containers.
func (c *criClient) removePod(ctx context.Context, p *pod) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("StopPodSandbox %s failed: %w", p.id, err)
	}
	if _, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("RemovePodSandbox %s failed: %w", p.id, err)
	}
	return nil
}

func (c *criClient) createContainer(ctx context.Context, p *pod, config *runtimeapi.ContainerConfig) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  p.id,
		Config:        config,
		SandboxConfig: p.config,
	})
	if err != nil {
		return "", fmt.Errorf("CreateContainer %s in pod %s failed: %w", config.GetMetadata().GetName(), p.id, err)
	}
	return resp.GetContainerId(), nil
}

func (c *criClient) startContainer(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("StartContainer %s failed: %w", id, err)
	}
	return nil
}

// removeContainer stops a container at once with SIGKILL and removes it.
func (c *criClient) removeContainer(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := c.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		return fmt.Errorf("StopContainer %s failed: %w", id, err)
	}
	if _, err := c.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("RemoveContainer %s failed: %w", id, err)
	}
	return nil
}

// requireRunning fails unless CRI reports the container as running.
func (c *criClient) requireRunning(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return fmt.Errorf("ContainerStatus %s failed: %w", id, err)
	}
	if state := resp.GetStatus().GetState(); state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("container %s is %s after StartContainer returned, expected %s (exit code %d, reason %q)",
			id, state, runtimeapi.ContainerState_CONTAINER_RUNNING, resp.GetStatus().GetExitCode(), resp.GetStatus().GetReason())
	}
	return nil
}

// waitExited polls ContainerStatus until CRI reports the container as exited. CRI handles a
// TaskExit event on its own, so its state can lag behind bench's subscription.
func (c *criClient) waitExited(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	for {
		resp, err := c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			return fmt.Errorf("ContainerStatus %s failed while waiting for its exit: %w", id, err)
		}
		if resp.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			return nil
		}
		if err := sleepContext(ctx, pollInterval); err != nil {
			return fmt.Errorf("container %s has not exited according to CRI: %w", id, err)
		}
	}
}

// execSync runs cmd in the container and fails unless it exits with status 0.
func (c *criClient) execSync(ctx context.Context, id string, cmd []string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: execTimeoutSeconds})
	if err != nil {
		return fmt.Errorf("ExecSync %q in container %s failed: %w", cmd, id, err)
	}
	if resp.GetExitCode() != 0 {
		return fmt.Errorf("ExecSync %q in container %s exited with status %d, stderr %q", cmd, id, resp.GetExitCode(), resp.GetStderr())
	}
	return nil
}
