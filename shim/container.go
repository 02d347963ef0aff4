package shim

import (
	"sync"
	"time"

	"github.com/containerd/containerd/api/types/task"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"reaper.dev/reaper/runtime"
)

// container is one task of the pod served by this shim.
type container struct {
	id      string
	bundle  string
	spec    *specs.Spec
	sandbox bool
	stdin   string
	stdout  string
	stderr  string

	host *runtime.Container
	io   *processIO

	// exited is closed once the main process has exited and its status is recorded.
	exited chan struct{}

	// mu guards the fields below.
	mu         sync.Mutex
	status     task.Status
	starting   bool       // Start is between exec and publishing TaskStart
	earlyExit  *exitEvent // an exit seen while starting, handled after TaskStart
	exitStatus int
	exitedAt   time.Time
}

// exitEvent is one exit collected by the reaper.
type exitEvent struct {
	pid       int
	status    int
	timestamp time.Time
}

func (c *container) pid() int {
	return c.host.Pid
}

func (c *container) snapshot() (task.Status, int, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.exitStatus, c.exitedAt
}
