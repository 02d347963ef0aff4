package shim

import (
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"reaper.dev/reaper/runtime"
)

// container is one task of the pod served by this shim: its main process and the
// processes exec'd into it.
type container struct {
	id      string
	bundle  string
	spec    *specs.Spec
	sandbox bool
	options options
	init    *process

	// mu guards execs.
	mu    sync.Mutex
	execs map[string]*process
}

// process returns the main process for an empty execID, else the exec process.
func (c *container) process(execID string) (*process, error) {
	if execID == "" {
		return c.init, nil
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.execs[execID]
	if !ok {
		return nil, fmt.Errorf("exec %q in container %q: %w", execID, c.id, errdefs.ErrNotFound)
	}
	return p, nil
}

func (c *container) addExec(p *process) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if _, ok := c.execs[p.execID]; ok {
		return fmt.Errorf("exec %q in container %q: %w", p.execID, c.id, errdefs.ErrAlreadyExists)
	}
	c.execs[p.execID] = p
	return nil
}

func (c *container) removeExec(execID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.execs, execID)
}

func (c *container) execList() []*process {
	c.mu.Lock()
	defer c.mu.Unlock()

	list := make([]*process, 0, len(c.execs))
	for _, p := range c.execs {
		list = append(list, p)
	}
	return list
}

// process is a container's main process or one exec'd into it.
type process struct {
	container *container
	execID    string         // empty for the main process
	spec      *specs.Process // the exec's process; nil for the main process
	stdio     stdioPaths

	// host and io are set once the process is spawned and never change after.
	host *runtime.Container
	io   *processIO

	// exited is closed once the process has exited and its status is recorded.
	exited chan struct{}

	// mu guards the fields below.
	mu         sync.Mutex
	status     task.Status
	starting   bool       // Start is between exec and publishing its start event
	earlyExit  *exitEvent // an exit seen while starting, handled after the start event
	exitStatus int
	exitedAt   time.Time
}

func newProcess(c *container, execID string, spec *specs.Process, stdio stdioPaths) *process {
	return &process{
		container: c,
		execID:    execID,
		spec:      spec,
		stdio:     stdio,
		exited:    make(chan struct{}),
		status:    task.Status_CREATED,
	}
}

// id returns the id containerd uses for the process in events: the exec id, or the
// container id for the main process.
func (p *process) id() string {
	if p.execID != "" {
		return p.execID
	}
	return p.container.id
}

func (p *process) pid() int {
	if p.host == nil {
		return 0
	}
	return p.host.Pid
}

func (p *process) snapshot() (task.Status, int, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.exitStatus, p.exitedAt
}

// exitEvent is one exit collected by the reaper.
type exitEvent struct {
	pid       int
	status    int
	timestamp time.Time
}
