package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"reaper.dev/reaper/runtime"
)

var empty = &ptypes.Empty{}

// deleteKillTimeout bounds the wait for a created but never started container to
// exit after SIGKILL.
const deleteKillTimeout = 5 * time.Second

// Create starts the container's init helper, which waits for Start.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	c, err := s.create(ctx, r)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", r.ID).Error("failed to create container")
		return nil, errgrpc.ToGRPC(err)
	}

	s.send(&eventstypes.TaskCreate{
		ContainerID: r.ID,
		Bundle:      r.Bundle,
		IO:          &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Pid:         uint32(c.pid()),
	})
	return &taskAPI.CreateTaskResponse{Pid: uint32(c.pid())}, nil
}

func (s *service) create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*container, error) {
	if err := checkCreateRequest(r); err != nil {
		return nil, err
	}

	spec, err := runtime.LoadSpec(r.Bundle)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}

	if _, err := s.get(r.ID); err == nil {
		return nil, fmt.Errorf("container %q: %w", r.ID, errdefs.ErrAlreadyExists)
	}

	pio, err := newProcessIO(ctx, r.ID, r.Stdout, r.Stderr)
	if err != nil {
		return nil, err
	}

	c := &container{
		id:      r.ID,
		bundle:  r.Bundle,
		spec:    spec,
		sandbox: runtime.IsSandbox(spec),
		stdin:   r.Stdin,
		stdout:  r.Stdout,
		stderr:  r.Stderr,
		io:      pio,
		exited:  make(chan struct{}),
		status:  task.Status_CREATED,
	}
	if err := s.spawn(c, pio); err != nil {
		pio.closeAll()
		return nil, err
	}
	return c, nil
}

func checkCreateRequest(r *taskAPI.CreateTaskRequest) error {
	if err := runtime.ValidateID(r.ID); err != nil {
		return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}

	if r.Checkpoint != "" {
		return fmt.Errorf("container %q: restoring from a checkpoint is not supported: %w", r.ID, errdefs.ErrInvalidArgument)
	}

	// TODO: allocate a pty for tty containers (kubectl run -it); until then they are rejected.
	if r.Terminal {
		return fmt.Errorf("container %q: a terminal (tty: true) is not supported yet: %w", r.ID, errdefs.ErrInvalidArgument)
	}
	return nil
}

// spawn creates the host process and registers it, so that processExits can match
// its exit even when it comes before spawn returns.
func (s *service) spawn(c *container, pio *processIO) error {
	var spawnedPid int
	host, err := runtime.Create(runtime.CreateOptions{
		Root:       filepath.Join(c.bundle, stateDirName),
		ID:         c.id,
		Bundle:     c.bundle,
		Spec:       c.spec,
		Process:    processFor(c),
		Path:       pausePath(c),
		Executable: selfExecutable,
		Stdout:     writerOrNil(pio.stdout),
		Stderr:     writerOrNil(pio.stderr),
		StartProcess: func(cmd *exec.Cmd) error {
			s.mu.Lock()
			defer s.mu.Unlock()

			if err := cmd.Start(); err != nil {
				return err
			}
			spawnedPid = cmd.Process.Pid
			s.byPid[spawnedPid] = c
			return nil
		},
	})
	pio.closeChildEnds()

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.byPid, spawnedPid)
		return err
	}

	c.host = host
	s.containers[c.id] = c
	return nil
}

// processFor returns the process a container runs: the spec's, or for the pod
// sandbox the shim's own pause mode.
func processFor(c *container) *specs.Process {
	if !c.sandbox {
		return nil
	}

	process := *c.spec.Process
	process.Args = []string{os.Args[0], runtime.PauseArg}
	process.Env = nil
	process.Cwd = "/"
	return &process
}

func pausePath(c *container) string {
	if !c.sandbox {
		return ""
	}
	return selfExecutable
}

// Start lets the container's workload run and publishes TaskStart, then any exit
// that came in the meantime.
func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, err := s.getInit(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if err := c.beginStart(); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	startErr := c.host.Start()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.starting = false

	if startErr != nil {
		log.G(ctx).WithError(startErr).WithField("id", r.ID).Error("failed to start container")
	} else {
		c.status = task.Status_RUNNING
		s.send(&eventstypes.TaskStart{ContainerID: c.id, Pid: uint32(c.pid())})
	}

	if c.earlyExit != nil {
		s.handleExitLocked(c, c.earlyExit)
	}

	if startErr != nil {
		return nil, errgrpc.ToGRPC(startErr)
	}
	return &taskAPI.StartResponse{Pid: uint32(c.pid())}, nil
}

func (c *container) beginStart() error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.status != task.Status_CREATED || c.starting {
		return fmt.Errorf("container %q is %s, only a created container can start: %w",
			c.id, c.status, errdefs.ErrFailedPrecondition)
	}
	c.starting = true
	return nil
}

// getInit returns the container of a request for its main process. Exec processes
// are not supported yet, so any exec id is unknown.
func (s *service) getInit(id, execID string) (*container, error) {
	if execID != "" {
		return nil, fmt.Errorf("exec %q in container %q: %w", execID, id, errdefs.ErrNotFound)
	}
	return s.get(id)
}

// State returns the container's status and stdio paths; after a containerd restart,
// CRI reopens the FIFOs from these paths.
func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, err := s.getInit(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	status, exitStatus, exitedAt := c.snapshot()
	return &taskAPI.StateResponse{
		ID:         c.id,
		Bundle:     c.bundle,
		Pid:        uint32(c.pid()),
		Status:     status,
		Stdin:      c.stdin,
		Stdout:     c.stdout,
		Stderr:     c.stderr,
		ExitStatus: uint32(exitStatus),
		ExitedAt:   protobuf.ToTimestamp(exitedAt),
	}, nil
}

// Wait blocks until the main process exits, with no timeout of its own.
func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	c, err := s.getInit(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	select {
	case <-c.exited:
	case <-ctx.Done():
		return nil, errgrpc.ToGRPC(ctx.Err())
	}

	_, exitStatus, exitedAt := c.snapshot()
	return &taskAPI.WaitResponse{
		ExitStatus: uint32(exitStatus),
		ExitedAt:   protobuf.ToTimestamp(exitedAt),
	}, nil
}

// Kill signals the main process, or every process of the container when All is set.
func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*ptypes.Empty, error) {
	c, err := s.getInit(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	status, _, _ := c.snapshot()
	if status == task.Status_STOPPED {
		if r.All {
			c.host.KillAll()
			return empty, nil
		}
		return nil, errgrpc.ToGRPC(fmt.Errorf("container %q: process already finished: %w", c.id, errdefs.ErrNotFound))
	}

	err = c.host.Signal(syscall.Signal(r.Signal), r.All)
	if errors.Is(err, runtime.ErrNotRunning) {
		return nil, errgrpc.ToGRPC(fmt.Errorf("%w: %w", errdefs.ErrNotFound, err))
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return empty, nil
}

// Delete removes a stopped (or never started) container once its output has drained.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, err := s.getInit(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if err := s.stopCreated(c); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	c.io.wait(ctx, c.id)
	if err := c.host.Delete(true); err != nil {
		log.G(ctx).WithError(err).WithField("id", c.id).Warn("failed to remove container state")
	}

	s.mu.Lock()
	delete(s.containers, c.id)
	delete(s.byPid, c.pid())
	s.mu.Unlock()

	_, exitStatus, exitedAt := c.snapshot()
	s.send(&eventstypes.TaskDelete{
		ContainerID: c.id,
		ID:          c.id,
		Pid:         uint32(c.pid()),
		ExitStatus:  uint32(exitStatus),
		ExitedAt:    protobuf.ToTimestamp(exitedAt),
	})
	return &taskAPI.DeleteResponse{
		Pid:        uint32(c.pid()),
		ExitStatus: uint32(exitStatus),
		ExitedAt:   protobuf.ToTimestamp(exitedAt),
	}, nil
}

// stopCreated kills a container that was created but never started, which containerd
// deletes without a Kill, and refuses to delete one that still runs.
func (s *service) stopCreated(c *container) error {
	status, _, _ := c.snapshot()
	switch status {
	case task.Status_STOPPED:
		return nil
	case task.Status_CREATED:
		c.host.KillAll()
	default:
		return fmt.Errorf("container %q is %s: kill it before deleting it: %w", c.id, status, errdefs.ErrFailedPrecondition)
	}

	select {
	case <-c.exited:
		return nil
	case <-time.After(deleteKillTimeout):
		return fmt.Errorf("container %q did not exit within %s of SIGKILL", c.id, deleteKillTimeout)
	}
}

// Pids lists the processes of the container: its process group.
func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	pids, err := runtime.GroupPids(c.pid())
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	processes := make([]*task.ProcessInfo, 0, len(pids))
	for _, pid := range pids {
		processes = append(processes, &task.ProcessInfo{Pid: uint32(pid)})
	}
	return &taskAPI.PidsResponse{Processes: processes}, nil
}

// Connect returns the shim's and the container's pids; containerd calls it when it
// reconnects after a restart.
func (s *service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	var taskPid uint32
	if c, err := s.get(r.ID); err == nil {
		taskPid = uint32(c.pid())
	}
	return &taskAPI.ConnectResponse{ShimPid: shimPid(), TaskPid: taskPid}, nil
}

// Shutdown stops the shim once it serves no container. containerd calls it after
// every task delete, so it does nothing while other containers of the pod remain.
func (s *service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*ptypes.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if len(s.containers) > 0 {
		return empty, nil
	}
	s.shutdown.Shutdown()
	return empty, nil
}

// writerOrNil keeps a nil *os.File from becoming a non-nil io.Writer, which exec.Cmd
// would try to use instead of /dev/null.
func writerOrNil(file *os.File) io.Writer {
	if file == nil {
		return nil
	}
	return file
}
