package shim

import (
	"context"
	"fmt"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"reaper.dev/reaper/runtime"
)

// Exec registers a process to run in a container; Start spawns it. CRI sends the
// container's own process spec with new args, so user, env and cwd stay the
// container's unless the exec request changes them.
func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	p, err := s.newExec(r)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	s.send(&eventstypes.TaskExecAdded{ContainerID: r.ID, ExecID: p.execID})
	return empty, nil
}

func (s *service) newExec(r *taskAPI.ExecProcessRequest) (*process, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}

	if err := runtime.ValidateID(r.ExecID); err != nil {
		return nil, fmt.Errorf("invalid exec id: %w: %w", errdefs.ErrInvalidArgument, err)
	}

	spec, err := execSpec(r)
	if err != nil {
		return nil, err
	}

	p := newProcess(c, r.ExecID, spec, stdioPaths{stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, terminal: r.Terminal})
	if err := c.addExec(p); err != nil {
		return nil, err
	}
	return p, nil
}

func execSpec(r *taskAPI.ExecProcessRequest) (*specs.Process, error) {
	if r.Spec == nil {
		return nil, fmt.Errorf("exec %q has no process spec: %w", r.ExecID, errdefs.ErrInvalidArgument)
	}

	decoded, err := typeurl.UnmarshalAny(r.Spec)
	if err != nil {
		return nil, fmt.Errorf("invalid process spec of exec %q: %w: %w", r.ExecID, errdefs.ErrInvalidArgument, err)
	}

	spec, ok := decoded.(*specs.Process)
	if !ok {
		return nil, fmt.Errorf("invalid process spec of exec %q: got %T: %w", r.ExecID, decoded, errdefs.ErrInvalidArgument)
	}
	return spec, nil
}

// CloseIO closes the process's stdin once the client's side of it is closed too.
func (s *service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*ptypes.Empty, error) {
	p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if r.Stdin && p.io != nil {
		p.io.closeStdin()
	}
	return empty, nil
}

// ResizePty sets the window size of a tty process.
func (s *service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*ptypes.Empty, error) {
	p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if p.io != nil {
		if err := p.io.resize(r.Width, r.Height); err != nil {
			return nil, errgrpc.ToGRPC(fmt.Errorf("failed to resize the pty of process %q: %w", p.id(), err))
		}
	}
	return empty, nil
}
