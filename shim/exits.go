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
		c := s.byPid[e.Pid]
		_, created := s.containers[containerID(c)]
		s.mu.Unlock()

		if c == nil {
			// An orphan re-parented to the shim, reaped so it leaves no zombie.
			continue
		}
		s.onExit(c, exit, created)
	}
}

func containerID(c *container) string {
	if c == nil {
		return ""
	}
	return c.id
}

// onExit records an exit, or holds it while Create or Start has yet to publish the
// event that must come before TaskExit.
func (s *service) onExit(c *container, exit *exitEvent, created bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if !created || c.starting {
		c.earlyExit = exit
		return
	}
	s.handleExitLocked(c, exit)
}

// handleExitLocked marks the container stopped, kills what is left of it, and
// publishes TaskExit. The caller holds c.mu.
func (s *service) handleExitLocked(c *container, exit *exitEvent) {
	if c.status == task.Status_STOPPED {
		return
	}

	c.status = task.Status_STOPPED
	c.exitStatus = exit.status
	c.exitedAt = exit.timestamp
	c.earlyExit = nil

	// Without a private PID namespace the children of the main process would outlive
	// it and hold its stdout and stderr open, as runc's shim also assumes.
	c.host.KillAll()

	record := runtime.Exit{Pid: exit.pid, Status: exit.status, ExitedAt: exit.timestamp}
	if err := c.host.WriteExit(record); err != nil {
		log.G(s.ctx).WithError(err).WithField("id", c.id).Warn("failed to record the exit status")
	}
	close(c.exited)

	s.send(&eventstypes.TaskExit{
		ContainerID: c.id,
		ID:          c.id,
		Pid:         uint32(exit.pid),
		ExitStatus:  uint32(exit.status),
		ExitedAt:    protobuf.ToTimestamp(exit.timestamp),
	})
}
