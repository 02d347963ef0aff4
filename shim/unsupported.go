package shim

import (
	"context"
	"fmt"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
)

// The RPCs below are not implemented. containerd treats ErrNotImplemented from these
// calls as a plain failure. It must never come from Create or Connect, because there
// it makes containerd fall back to task API v2.

func notImplemented(call string) error {
	return errgrpc.ToGRPC(fmt.Errorf("%s is not supported by the reaper shim yet: %w", call, errdefs.ErrNotImplemented))
}

// Pause is not supported.
func (s *service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("pause")
}

// Resume is not supported.
func (s *service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("resume")
}

// Checkpoint is not supported: a host process cannot be checkpointed without CRIU.
func (s *service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("checkpoint")
}
