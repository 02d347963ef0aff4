package shim

import (
	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	"github.com/containerd/log"

	"reaper.dev/reaper/runtime"
)

// processExits is the only consumer of the reaper's exits in the serving shim.
func (s *service) processExits() {
	for e := range s.exits {
		exit := &exitEvent{pid: e.Pid, status: e.Status, timestamp: e.Timestamp}

		s.mu.Lock()
		p := s.byPid[e.Pid]
		spawned := p != nil && p.host != nil
		s.mu.Unlock()

		if p == nil {
			// An orphan re-parented to the shim, reaped so it leaves no zombie.
			continue
		}
		s.onExit(p, exit, spawned)
	}
}

// onExit records an exit, or holds it while spawn or Start has yet to publish the
// event that must come before TaskExit.
func (s *service) onExit(p *process, exit *exitEvent, spawned bool) {
	p.mu.Lock()
	defer p.mu.Unlock()

	if !spawned || p.starting {
		p.earlyExit = exit
		return
	}
	s.handleExitLocked(p, exit)
}

// handleExitLocked marks the process stopped and publishes TaskExit. When the main
// process exits, the rest of the container is killed. The caller holds p.mu.
func (s *service) handleExitLocked(p *process, exit *exitEvent) {
	if p.status == task.Status_STOPPED {
		return
	}

	p.status = task.Status_STOPPED
	p.exitStatus = exit.status
	p.exitedAt = exit.timestamp
	p.earlyExit = nil

	if p.io != nil {
		p.io.shutdownConsole()
	}

	if p.execID == "" {
		s.killContainer(p.container)
		record := runtime.Exit{Pid: exit.pid, Status: exit.status, ExitedAt: exit.timestamp}
		if err := p.host.WriteExit(record); err != nil {
			log.G(s.ctx).WithError(err).WithField("id", p.container.id).Warn("failed to record the exit status")
		}
	}
	close(p.exited)

	s.send(&eventstypes.TaskExit{
		ContainerID: p.container.id,
		ID:          p.id(),
		Pid:         uint32(exit.pid),
		ExitStatus:  uint32(exit.status),
		ExitedAt:    protobuf.ToTimestamp(exit.timestamp),
	})
}

// killContainer sends SIGKILL to every process group of the container: the main
// one and one per exec. Without a private PID namespace, children would outlive the
// main process and hold its stdout and stderr open, as runc's shim also assumes.
func (s *service) killContainer(c *container) {
	c.init.host.KillAll()
	for _, exec := range c.execList() {
		if exec.host != nil {
			exec.host.KillAll()
		}
	}
}
