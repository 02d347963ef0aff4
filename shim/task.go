package shim

import (
	"context"
	"errors"
	"fmt"
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

	"reaper.dev/reaper/runtime"
)

var empty = &ptypes.Empty{}

// deleteKillTimeout bounds the wait for a created but never started process to exit
// after SIGKILL.
const deleteKillTimeout = 5 * time.Second

// Create starts the container's init helper, which waits for Start.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	c, err := s.create(ctx, r)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", r.ID).Error("failed to create container")
		return nil, errgrpc.ToGRPC(err)
	}

	pid := uint32(c.init.pid())
	s.send(&eventstypes.TaskCreate{
		ContainerID: r.ID,
		Bundle:      r.Bundle,
		IO:          &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Pid:         pid,
	})
	return &taskAPI.CreateTaskResponse{Pid: pid}, nil
}

func (s *service) create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*container, error) {
	if err := checkCreateRequest(r); err != nil {
		return nil, err
	}

	spec, err := runtime.LoadSpec(r.Bundle)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}

	opts, err := parseOptions(r.Options)
	if err == nil {
		err = opts.checkCgroupDriver(spec)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}

	if _, err := s.get(r.ID); err == nil {
		return nil, fmt.Errorf("container %q: %w", r.ID, errdefs.ErrAlreadyExists)
	}

	c := &container{
		id:      r.ID,
		bundle:  r.Bundle,
		spec:    spec,
		sandbox: runtime.IsSandbox(spec),
		options: opts,
		execs:   make(map[string]*process),
	}
	c.init = newProcess(c, "", nil, stdioPaths{stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, terminal: r.Terminal})

	if err := s.spawn(ctx, c.init); err != nil {
		return nil, err
	}

	s.mu.Lock()
	s.containers[c.id] = c
	s.mu.Unlock()
	return c, nil
}

func checkCreateRequest(r *taskAPI.CreateTaskRequest) error {
	if err := runtime.ValidateID(r.ID); err != nil {
		return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}

	if r.Checkpoint != "" {
		return fmt.Errorf("container %q: restoring from a checkpoint is not supported: %w", r.ID, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Start runs a created main process, or spawns and runs an exec process, then
// publishes its start event and any exit that came in the meantime.
func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if err := p.beginStart(); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	startErr := s.runProcess(ctx, p)
	s.finishStart(p, startErr)
	if startErr != nil {
		log.G(ctx).WithError(startErr).WithFields(log.Fields{"id": r.ID, "exec_id": r.ExecID}).Error("failed to start process")
		return nil, errgrpc.ToGRPC(startErr)
	}
	return &taskAPI.StartResponse{Pid: uint32(p.pid())}, nil
}

func (p *process) beginStart() error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.status != task.Status_CREATED || p.starting {
		return fmt.Errorf("process %q is %s, only a created process can start: %w", p.id(), p.status, errdefs.ErrFailedPrecondition)
	}
	p.starting = true
	return nil
}

// runProcess lets the workload of p execve. An exec process is spawned first, since
// Exec only registers it.
func (s *service) runProcess(ctx context.Context, p *process) error {
	if p.execID != "" {
		if status, _, _ := p.container.init.snapshot(); status != task.Status_RUNNING {
			return fmt.Errorf("container %q is %s, exec needs a running container: %w", p.container.id, status, errdefs.ErrFailedPrecondition)
		}
		if err := s.spawn(ctx, p); err != nil {
			return err
		}
	}
	return p.host.Start()
}

// finishStart publishes the start event, or for a failed exec the exit that
// unblocks its Wait, then handles an exit that came while starting.
func (s *service) finishStart(p *process, startErr error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starting = false

	switch {
	case startErr == nil:
		p.status = task.Status_RUNNING
		s.send(startEvent(p))
	case p.host == nil:
		// The exec never ran; 127 is the shell's status for a command that could not run.
		s.handleExitLocked(p, &exitEvent{status: 127, timestamp: time.Now()})
		return
	}

	if p.earlyExit != nil {
		s.handleExitLocked(p, p.earlyExit)
	}
}

func startEvent(p *process) any {
	if p.execID != "" {
		return &eventstypes.TaskExecStarted{ContainerID: p.container.id, ExecID: p.execID, Pid: uint32(p.pid())}
	}
	return &eventstypes.TaskStart{ContainerID: p.container.id, Pid: uint32(p.pid())}
}

func (s *service) getProcess(id, execID string) (*process, error) {
	c, err := s.get(id)
	if err != nil {
		return nil, err
	}
	return c.process(execID)
}

// State returns a process's status and stdio paths; after a containerd restart,
// CRI reopens the FIFOs from these paths.
func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	status, exitStatus, exitedAt := p.snapshot()
	return &taskAPI.StateResponse{
		ID:         p.id(),
		ExecID:     p.execID,
		Bundle:     p.container.bundle,
		Pid:        uint32(p.pid()),
		Status:     status,
		Stdin:      p.stdio.stdin,
		Stdout:     p.stdio.stdout,
		Stderr:     p.stdio.stderr,
		Terminal:   p.stdio.terminal,
		ExitStatus: uint32(exitStatus),
		ExitedAt:   protobuf.ToTimestamp(exitedAt),
	}, nil
}

// Wait blocks until the process exits, with no timeout of its own.
func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	select {
	case <-p.exited:
	case <-ctx.Done():
		return nil, errgrpc.ToGRPC(ctx.Err())
	}

	_, exitStatus, exitedAt := p.snapshot()
	return &taskAPI.WaitResponse{
		ExitStatus: uint32(exitStatus),
		ExitedAt:   protobuf.ToTimestamp(exitedAt),
	}, nil
}

// Kill signals a process. For the main process, All signals every process of the
// container, and is still valid after the main process has exited.
func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*ptypes.Empty, error) {
	p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if err := s.kill(p, syscall.Signal(r.Signal), r.All && r.ExecID == ""); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return empty, nil
}

func (s *service) kill(p *process, sig syscall.Signal, all bool) error {
	status, _, _ := p.snapshot()
	switch {
	case status == task.Status_STOPPED && all:
		s.killContainer(p.container)
		return nil
	case status == task.Status_STOPPED:
		return fmt.Errorf("process %q already finished: %w", p.id(), errdefs.ErrNotFound)
	case p.host == nil:
		return fmt.Errorf("exec %q has not started: %w", p.id(), errdefs.ErrFailedPrecondition)
	}

	err := p.host.Signal(sig, all)
	if errors.Is(err, runtime.ErrNotRunning) {
		return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
	}
	return err
}

// Delete removes a stopped (or never started) process once its output has drained.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if err := s.stopCreated(p); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	s.release(ctx, p)
	_, exitStatus, exitedAt := p.snapshot()
	if p.execID == "" {
		s.send(&eventstypes.TaskDelete{
			ContainerID: p.container.id,
			ID:          p.container.id,
			Pid:         uint32(p.pid()),
			ExitStatus:  uint32(exitStatus),
			ExitedAt:    protobuf.ToTimestamp(exitedAt),
		})
	}
	return &taskAPI.DeleteResponse{
		Pid:        uint32(p.pid()),
		ExitStatus: uint32(exitStatus),
		ExitedAt:   protobuf.ToTimestamp(exitedAt),
	}, nil
}

// stopCreated kills a process that was created but never started, which containerd
// deletes without a Kill, and refuses to delete one that still runs.
func (s *service) stopCreated(p *process) error {
	status, _, _ := p.snapshot()
	switch {
	case status == task.Status_STOPPED:
		return nil
	case status == task.Status_CREATED && p.host == nil:
		return nil
	case status == task.Status_CREATED:
		p.host.KillAll()
	default:
		return fmt.Errorf("process %q is %s: kill it before deleting it: %w", p.id(), status, errdefs.ErrFailedPrecondition)
	}

	select {
	case <-p.exited:
		return nil
	case <-time.After(deleteKillTimeout):
		return fmt.Errorf("process %q did not exit within %s of SIGKILL", p.id(), deleteKillTimeout)
	}
}

// release waits for the process's output, removes its state and drops it from the
// service's maps.
func (s *service) release(ctx context.Context, p *process) {
	if p.io != nil {
		p.io.wait(ctx, p.id())
	}

	if p.host != nil {
		if err := p.host.Delete(true); err != nil {
			log.G(ctx).WithError(err).WithField("id", p.id()).Warn("failed to remove process state")
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byPid, p.pid())
	if p.execID != "" {
		p.container.removeExec(p.execID)
	} else {
		delete(s.containers, p.container.id)
	}
}

// Pids lists the processes of the container: the process group of its main process
// and of each exec. A container whose main process has exited but is not deleted
// yet still lists that pid: containerd, reconnecting after a restart, deletes a task
// with no pids and then reports exit code 255 instead of the real one.
func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}

	if status, _, _ := c.init.snapshot(); status == task.Status_STOPPED {
		return &taskAPI.PidsResponse{Processes: []*task.ProcessInfo{{Pid: uint32(c.init.pid())}}}, nil
	}

	if cg, err := c.init.host.Cgroup(); err == nil && cg != nil {
		return cgroupPids(cg)
	}

	groups := []*process{c.init}
	groups = append(groups, c.execList()...)

	var processes []*task.ProcessInfo
	for _, p := range groups {
		if p.host == nil {
			continue
		}
		pids, err := runtime.GroupPids(p.pid())
		if err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		for _, pid := range pids {
			processes = append(processes, &task.ProcessInfo{Pid: uint32(pid)})
		}
	}
	return &taskAPI.PidsResponse{Processes: processes}, nil
}

func cgroupPids(cg runtime.Cgroup) (*taskAPI.PidsResponse, error) {
	pids, err := cg.Procs()
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
		taskPid = uint32(c.init.pid())
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
