package shim

import (
	"context"
	"fmt"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"reaper.dev/reaper/runtime"
)

// Stats returns the container's cgroup metrics, which CRI reports as container
// stats and the kubelet as its CPU and memory usage.
func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	cg, err := s.cgroupOf(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	metrics, err := cg.Stats()
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("failed to read the cgroup stats of container %q: %w", r.ID, err))
	}

	data, err := typeurl.MarshalAnyToProto(metrics)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("failed to encode the stats of container %q: %w", r.ID, err))
	}
	return &taskAPI.StatsResponse{Stats: data}, nil
}

// Update applies new resource limits to the container's cgroup, as CRI's
// UpdateContainerResources and in-place pod resize ask.
func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*ptypes.Empty, error) {
	cg, err := s.cgroupOf(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if r.Resources == nil {
		return empty, nil
	}
	decoded, err := typeurl.UnmarshalAny(r.Resources)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("invalid resources for container %q: %w: %w", r.ID, errdefs.ErrInvalidArgument, err))
	}
	resources, ok := decoded.(*specs.LinuxResources)
	if !ok {
		return nil, errgrpc.ToGRPC(fmt.Errorf("invalid resources for container %q: got %T: %w", r.ID, decoded, errdefs.ErrInvalidArgument))
	}

	if err := cg.Update(resources); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("failed to update the cgroup of container %q: %w", r.ID, err))
	}
	return empty, nil
}

func (s *service) cgroupOf(id string) (runtime.Cgroup, error) {
	c, err := s.get(id)
	if err != nil {
		return nil, err
	}

	cg, err := c.init.host.Cgroup()
	if err != nil {
		return nil, err
	}
	if cg == nil {
		return nil, fmt.Errorf("container %q has no cgroup (its spec sets no cgroupsPath): %w", id, errdefs.ErrNotFound)
	}
	return cg, nil
}
