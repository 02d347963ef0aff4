package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"reaper.dev/reaper/runtime/initproc"
)

// OCI status values, as reaper-runtime state prints them.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// ErrNotRunning is returned for a signal to a container whose process is gone.
var ErrNotRunning = errors.New("container is not running")

// Container is a host process created from an OCI bundle, with its state directory.
type Container struct {
	State

	dir    string
	init   *initHandle // set only in the process that created the container
	cgroup Cgroup      // loaded on first use when CgroupPath is set
}

// CreateOptions describe a container to create.
type CreateOptions struct {
	// Root is the state root; the container's state lives in Root/ID.
	Root   string
	ID     string
	Bundle string

	// Spec is the bundle's spec; Create loads it from Bundle when nil.
	Spec *specs.Spec
	// Process replaces Spec.Process, as the shim does to run its pause mode.
	Process *specs.Process
	// Path, when set, is the executable to run instead of resolving args[0].
	Path string

	// Executable is the binary whose init mode runs the helper (RunInit).
	Executable string

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Terminal makes Stdin, a pty slave, the process's controlling terminal.
	Terminal bool
	// JoinCgroup puts the process into the existing cgroup of the spec's
	// cgroupsPath without owning it, as an exec process joins its container.
	JoinCgroup bool

	// HostView gives the process a mount namespace of its own, a slave of the host's,
	// with the spec's bind mounts at their destinations, and the spec's network
	// namespace. JoinNamespacesOf, a pid, joins that process's mount and network
	// namespaces instead, as an exec joins its container.
	HostView         bool
	JoinNamespacesOf int
	// Protection, with HostView, hides the host behind a read-only or overlay root.
	Protection *initproc.Protection

	// StartProcess starts the helper; the shim passes one that registers the pid with
	// its reaper before an exit can be collected. The default is exec.Cmd.Start.
	StartProcess func(*exec.Cmd) error
}

// Create starts the init helper of a new container and leaves it blocked until Start.
func Create(opts CreateOptions) (*Container, error) {
	if err := ValidateID(opts.ID); err != nil {
		return nil, err
	}

	spec, err := createSpec(opts)
	if err != nil {
		return nil, err
	}

	dir, err := createStateDir(opts.Root, opts.ID)
	if err != nil {
		return nil, err
	}

	config, err := initConfig(opts, spec, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	container, err := spawnContainer(opts, config, spec, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return container, nil
}

func createSpec(opts CreateOptions) (*specs.Spec, error) {
	spec := opts.Spec
	if spec == nil {
		loaded, err := LoadSpec(opts.Bundle)
		if err != nil {
			return nil, err
		}
		spec = loaded
	}

	if opts.Process != nil {
		copied := *spec
		copied.Process = opts.Process
		spec = &copied
	}
	return spec, nil
}

func createStateDir(root, id string) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("failed to create the state root %s: %w", root, err)
	}

	dir := filepath.Join(root, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("container %q already exists in %s: delete it first", id, root)
		}
		return "", fmt.Errorf("failed to create the state directory %s: %w", dir, err)
	}
	return dir, nil
}

func spawnContainer(opts CreateOptions, config initproc.InitConfig, spec *specs.Spec, dir string) (*Container, error) {
	handle, err := spawnInit(spawnOptions{
		executable: opts.Executable,
		config:     config,
		execFIFO:   filepath.Join(dir, execFIFOFile),
		stdin:      opts.Stdin,
		stdout:     opts.Stdout,
		stderr:     opts.Stderr,
		terminal:   opts.Terminal,
		start:      opts.StartProcess,
	})
	if err != nil {
		return nil, err
	}

	startTime, err := ProcessStartTime(handle.pid)
	if err != nil {
		handle.abort()
		return nil, fmt.Errorf("failed to read the start time of pid %d: %w", handle.pid, err)
	}

	container := &Container{
		State: State{
			ID:          opts.ID,
			Bundle:      opts.Bundle,
			Pid:         handle.pid,
			StartTime:   startTime,
			Created:     time.Now().UTC(),
			Annotations: spec.Annotations,
		},
		dir:  dir,
		init: handle,
	}

	if err := container.enterCgroup(spec, opts.JoinCgroup); err != nil {
		handle.abort()
		return nil, err
	}

	if err := writeJSON(filepath.Join(dir, stateFile), container.State); err != nil {
		handle.abort()
		_ = container.removeCgroup() // The error of the write is the one to report.
		return nil, err
	}
	return container, nil
}

// enterCgroup creates (or joins) the spec's cgroup and moves the helper into it
// while it still waits for Start, so every process of the workload starts there.
func (c *Container) enterCgroup(spec *specs.Spec, join bool) error {
	if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return nil
	}

	path, err := CgroupPath(spec.Linux.CgroupsPath)
	if err != nil {
		return err
	}

	var cg Cgroup
	if join {
		cg, err = LoadCgroup(path)
	} else {
		cg, err = NewCgroup(path, spec.Linux.Resources)
	}
	if err != nil {
		return err
	}
	c.cgroup, c.CgroupPath, c.OwnsCgroup = cg, path, !join

	if err := cg.AddProc(c.Pid); err != nil {
		_ = c.removeCgroup() // The error of AddProc is the one to report.
		return fmt.Errorf("failed to move pid %d into cgroup %s: %w", c.Pid, path, err)
	}
	return nil
}

// Cgroup returns the container's cgroup, or nil when the spec names none.
func (c *Container) Cgroup() (Cgroup, error) {
	if c.cgroup != nil || c.CgroupPath == "" {
		return c.cgroup, nil
	}

	cg, err := LoadCgroup(c.CgroupPath)
	if err != nil {
		return nil, err
	}
	c.cgroup = cg
	return cg, nil
}

// removeCgroup kills what is left in an owned cgroup and removes it.
func (c *Container) removeCgroup() error {
	if !c.OwnsCgroup {
		return nil
	}

	cg, err := c.Cgroup()
	if err != nil || cg == nil {
		return err
	}

	if err := killAndRemove(cg); err != nil {
		return fmt.Errorf("failed to remove cgroup %s of container %q: %w", c.CgroupPath, c.ID, err)
	}
	return nil
}

// initConfig returns what the init helper applies: the process, and the view of the
// host that CreateOptions request.
func initConfig(opts CreateOptions, spec *specs.Spec, dir string) (initproc.InitConfig, error) {
	config := initproc.NewInitConfig(spec.Process)
	config.Path = opts.Path

	if opts.JoinNamespacesOf != 0 {
		config.MountNamespace = fmt.Sprintf("/proc/%d/ns/mnt", opts.JoinNamespacesOf)
		config.NetworkNamespace = fmt.Sprintf("/proc/%d/ns/net", opts.JoinNamespacesOf)
		return config, nil
	}

	config.NetworkNamespace = NetworkNamespace(spec)
	if config.NetworkNamespace != "" {
		config.NetworkSysctls = NetworkSysctls(spec)
	}

	if opts.HostView {
		return config, addHostView(&config, opts, spec, dir)
	}
	return config, nil
}

// addHostView requests a mount namespace of the process's own with the spec's bind
// mounts, and the protection of opts.
func addHostView(config *initproc.InitConfig, opts CreateOptions, spec *specs.Spec, dir string) error {
	mounts, err := BindMounts(spec)
	if err != nil {
		return err
	}

	scratch := filepath.Join(dir, scratchDir)
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return fmt.Errorf("failed to create the scratch folder %s: %w", scratch, err)
	}

	config.MountNamespace = initproc.NewNamespace
	config.Mounts = mounts
	config.Protection = opts.Protection
	config.ScratchDir = scratch
	return nil
}

// Load reads the state of container id under root.
func Load(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}

	dir := filepath.Join(root, id)
	container := &Container{dir: dir}
	if err := readJSON(filepath.Join(dir, stateFile), &container.State); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("container %q does not exist in %s: %w", id, root, fs.ErrNotExist)
		}
		return nil, err
	}
	return container, nil
}

// List loads every container under root, sorted by id.
func List(root string) ([]*Container, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", root, err)
	}

	var containers []*Container
	for _, entry := range entries {
		if !entry.IsDir() || ValidateID(entry.Name()) != nil {
			continue
		}
		container, err := Load(root, entry.Name())
		if err != nil {
			continue
		}
		containers = append(containers, container)
	}

	sort.Slice(containers, func(i, j int) bool { return containers[i].ID < containers[j].ID })
	return containers, nil
}

// Warnings returns what the init helper could not apply as the spec asked, such as
// an OOM score the host forbids. Only the process that created the container has them.
func (c *Container) Warnings() []string {
	if c.init == nil {
		return nil
	}
	return c.init.warnings
}

// Dir returns the container's state directory.
func (c *Container) Dir() string {
	return c.dir
}

// Status returns created, running or stopped, judged from the live process.
func (c *Container) Status() string {
	if !IsRunning(c.Pid, c.StartTime) {
		return StatusStopped
	}

	if _, err := os.Lstat(filepath.Join(c.dir, execFIFOFile)); err == nil {
		return StatusCreated
	}
	return StatusRunning
}

// Start lets the init helper execve the workload. In the process that created the
// container it also returns an execve failure.
func (c *Container) Start() error {
	fifo := filepath.Join(c.dir, execFIFOFile)
	if _, err := os.Lstat(fifo); err != nil {
		return fmt.Errorf("container %q cannot be started: it is %s", c.ID, c.Status())
	}

	alive := func() bool { return IsRunning(c.Pid, c.StartTime) }
	if err := openExecFIFO(fifo, alive); err != nil {
		if c.init != nil {
			// The helper reports why it stopped before it exits.
			if reported := c.init.waitExec(); reported != nil {
				err = reported
			}
		}
		return fmt.Errorf("failed to start container %q: %w", c.ID, err)
	}

	if err := os.Remove(fifo); err != nil {
		return fmt.Errorf("failed to remove the exec FIFO of container %q: %w", c.ID, err)
	}

	if c.init != nil {
		if err := c.init.waitExec(); err != nil {
			return fmt.Errorf("failed to start container %q: %w", c.ID, err)
		}
	}
	return nil
}

// Signal sends sig to the container's main process, or to its whole process group
// when all is set. It returns ErrNotRunning when the process is gone.
func (c *Container) Signal(sig syscall.Signal, all bool) error {
	if !IsRunning(c.Pid, c.StartTime) {
		return fmt.Errorf("failed to signal container %q: %w", c.ID, ErrNotRunning)
	}

	err := signalProcess(c.Pid, sig, all)
	if errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to signal container %q: %w", c.ID, ErrNotRunning)
	}
	if err != nil {
		return fmt.Errorf("failed to send %s to container %q (pid %d): %w", sig, c.ID, c.Pid, err)
	}
	return nil
}

// KillAll sends SIGKILL to every process of the container: its process group and,
// when it owns one, its cgroup, which also holds the processes that left the group.
// It is safe to call after the main process has exited: the group id stays
// reserved while any member lives.
func (c *Container) KillAll() {
	_ = signalProcess(c.Pid, syscall.SIGKILL, true)

	if !c.OwnsCgroup {
		return
	}
	if cg, err := c.Cgroup(); err == nil && cg != nil {
		_ = cg.Kill()
	}
}

// Delete removes the container's state. A container that still runs is refused
// unless force is set, which kills it first.
func (c *Container) Delete(force bool) error {
	if status := c.Status(); status != StatusStopped {
		if !force {
			return fmt.Errorf("container %q is %s: stop it first, or delete with --force", c.ID, status)
		}
		c.KillAll()
		_ = signalProcess(c.Pid, syscall.SIGKILL, false)
	}

	if err := c.removeCgroup(); err != nil {
		return err
	}

	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("failed to remove the state of container %q: %w", c.ID, err)
	}
	return nil
}

// WriteExit records the exit of the main process for a later Delete or shim cleanup.
func (c *Container) WriteExit(exit Exit) error {
	return writeJSON(filepath.Join(c.dir, exitFile), exit)
}

// ReadExit returns the recorded exit of the main process, if any.
func (c *Container) ReadExit() (*Exit, error) {
	var exit Exit
	if err := readJSON(filepath.Join(c.dir, exitFile), &exit); err != nil {
		return nil, err
	}
	return &exit, nil
}

// OCIState returns the state in the format of the OCI runtime spec.
func (c *Container) OCIState() specs.State {
	status := c.Status()
	state := specs.State{
		Version:     specs.Version,
		ID:          c.ID,
		Status:      specs.ContainerState(status),
		Bundle:      c.Bundle,
		Annotations: c.Annotations,
	}
	if status != StatusStopped {
		state.Pid = c.Pid
	}
	return state
}
