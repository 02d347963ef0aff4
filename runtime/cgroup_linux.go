package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// unifiedMountpoint is the mount point of cgroup v2 on a host in unified mode.
const unifiedMountpoint = "/sys/fs/cgroup"

// cgroupEmptyTimeout bounds the wait for a killed cgroup to empty before removal.
const cgroupEmptyTimeout = 5 * time.Second

// Cgroup is a container's cgroup on cgroup v1 or v2.
type Cgroup interface {
	AddProc(pid int) error
	// Procs lists the pids of every process in the cgroup and its children.
	Procs() ([]int, error)
	// Kill sends SIGKILL to every process in the cgroup.
	Kill() error
	// Stats returns *cgroup1/stats.Metrics or *cgroup2/stats.Metrics, the types CRI
	// decodes for container stats.
	Stats() (any, error)
	Update(resources *specs.LinuxResources) error
	// Delete removes the cgroup; it must be empty.
	Delete() error
	// Handle returns the cgroup1.Cgroup or *cgroup2.Manager for OOM watchers.
	Handle() any
}

// IsSystemdCgroupsPath reports whether cgroupsPath has the systemd form
// "slice:prefix:name".
func IsSystemdCgroupsPath(cgroupsPath string) bool {
	parts := strings.Split(cgroupsPath, ":")
	return len(parts) == 3 && strings.HasSuffix(parts[0], ".slice")
}

// CgroupPath turns an OCI cgroupsPath into a path below the cgroup root. The
// systemd form "slice:prefix:name", which CRI sends when the kubelet uses the
// systemd cgroup driver, becomes the path systemd would give the scope.
//
// NOTE: Reaper creates that scope folder through cgroupfs. systemd has no unit for it,
// so systemctl does not list it and systemd does not manage its limits.
func CgroupPath(cgroupsPath string) (string, error) {
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) == 1 {
		return filepath.Join("/", cgroupsPath), nil
	}

	if !IsSystemdCgroupsPath(cgroupsPath) {
		return "", fmt.Errorf("invalid cgroupsPath %q: use a path, or slice:prefix:name for the systemd driver", cgroupsPath)
	}

	slice, err := expandSlice(parts[0])
	if err != nil {
		return "", fmt.Errorf("invalid cgroupsPath %q: %w", cgroupsPath, err)
	}
	return filepath.Join(slice, parts[1]+"-"+parts[2]+".scope"), nil
}

// expandSlice returns the path of a systemd slice: each dash names a parent, so
// "kubepods-besteffort.slice" lives in "/kubepods.slice/kubepods-besteffort.slice".
func expandSlice(slice string) (string, error) {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "-" {
		return "/", nil
	}
	if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}

	path := "/"
	prefix := ""
	for _, component := range strings.Split(name, "-") {
		if component == "" {
			return "", fmt.Errorf("invalid slice name %q", slice)
		}
		prefix += component
		path = filepath.Join(path, prefix+".slice")
		prefix += "-"
	}
	return path, nil
}

// NewCgroup creates the cgroup at path with the spec's limits.
func NewCgroup(path string, resources *specs.LinuxResources) (Cgroup, error) {
	resources = hostResources(resources)

	if cgroups.Mode() == cgroups.Unified {
		manager, err := cgroup2.NewManager(unifiedMountpoint, path, cgroup2.ToResources(resources))
		if err != nil {
			return nil, fmt.Errorf("failed to create cgroup %s: %w", path, err)
		}
		return &cgroupV2{manager}, nil
	}

	cg, err := cgroup1.New(cgroup1.StaticPath(path), resources)
	if err != nil {
		return nil, fmt.Errorf("failed to create cgroup %s: %w", path, err)
	}
	return &cgroupV1{cg}, nil
}

// LoadCgroup opens an existing cgroup.
func LoadCgroup(path string) (Cgroup, error) {
	if cgroups.Mode() == cgroups.Unified {
		manager, err := cgroup2.Load(path, cgroup2.WithMountpoint(unifiedMountpoint))
		if err != nil {
			return nil, fmt.Errorf("failed to load cgroup %s: %w", path, err)
		}
		return &cgroupV2{manager}, nil
	}

	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return nil, fmt.Errorf("failed to load cgroup %s: %w", path, err)
	}
	return &cgroupV1{cg}, nil
}

// hostResources drops the device rules: a host process uses the host's devices
// (drivers, disks) the way the node's own daemons do.
func hostResources(resources *specs.LinuxResources) *specs.LinuxResources {
	if resources == nil {
		return &specs.LinuxResources{}
	}
	copied := *resources
	copied.Devices = nil
	return &copied
}

// killAndRemove kills every process of cg, waits until it is empty, and removes it.
func killAndRemove(cg Cgroup) error {
	deadline := time.Now().Add(cgroupEmptyTimeout)
	for {
		if err := cg.Kill(); err != nil {
			return err
		}

		pids, err := cg.Procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return cg.Delete()
		}

		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup still has processes %v %s after SIGKILL", pids, cgroupEmptyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type cgroupV1 struct {
	cg cgroup1.Cgroup
}

func (c *cgroupV1) AddProc(pid int) error {
	return c.cg.AddProc(uint64(pid))
}

func (c *cgroupV1) Procs() ([]int, error) {
	processes, err := c.cg.Processes(cgroup1.Freezer, true)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list the processes of the cgroup: %w", err)
	}

	pids := make([]int, 0, len(processes))
	for _, process := range processes {
		pids = append(pids, process.Pid)
	}
	return pids, nil
}

// Kill freezes the cgroup so no process forks while the rest are signalled.
func (c *cgroupV1) Kill() error {
	if err := c.cg.Freeze(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to freeze the cgroup: %w", err)
	}
	defer c.cg.Thaw() //nolint:errcheck // A failed thaw leaves only killed processes frozen.

	pids, err := c.Procs()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

func (c *cgroupV1) Stats() (any, error) {
	return c.cg.Stat(cgroup1.IgnoreNotExist)
}

func (c *cgroupV1) Update(resources *specs.LinuxResources) error {
	resources = hostResources(resources)
	if err := c.raiseSwapFirst(resources); err != nil {
		return err
	}
	return c.cg.Update(resources)
}

// raiseSwapFirst writes a raised memory+swap limit before the memory limit, which
// cgroup v1 rejects with EINVAL while it exceeds the current memory+swap limit.
// cgroups v3.1.3 orders these writes wrongly (it swaps the soft limit instead). An
// update that names no swap keeps a cgroup without swap without swap.
func (c *cgroupV1) raiseSwapFirst(resources *specs.LinuxResources) error {
	memory := resources.Memory
	if memory == nil || memory.Limit == nil || *memory.Limit <= 0 {
		return nil
	}

	metrics, err := c.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return fmt.Errorf("failed to read the memory limits: %w", err)
	}
	if metrics.Memory == nil || metrics.Memory.Usage == nil || metrics.Memory.Swap == nil {
		// Without the memory controller or swap accounting there is no order to keep.
		return nil
	}
	currentSwap := metrics.Memory.Swap.Limit

	if memory.Swap == nil || *memory.Swap == 0 {
		if currentSwap != metrics.Memory.Usage.Limit {
			return nil
		}
		limit := *memory.Limit
		memory.Swap = &limit
	}

	if *memory.Swap < 0 || uint64(*memory.Swap) <= currentSwap {
		return nil
	}
	swapOnly := &specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: memory.Swap}}
	if err := c.cg.Update(swapOnly); err != nil {
		return fmt.Errorf("failed to raise the memory+swap limit to %d: %w", *memory.Swap, err)
	}
	return nil
}

func (c *cgroupV1) Delete() error {
	return c.cg.Delete()
}

func (c *cgroupV1) Handle() any {
	return c.cg
}

type cgroupV2 struct {
	manager *cgroup2.Manager
}

func (c *cgroupV2) AddProc(pid int) error {
	return c.manager.AddProc(uint64(pid))
}

func (c *cgroupV2) Procs() ([]int, error) {
	procs, err := c.manager.Procs(true)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list the processes of the cgroup: %w", err)
	}

	pids := make([]int, 0, len(procs))
	for _, pid := range procs {
		pids = append(pids, int(pid))
	}
	return pids, nil
}

func (c *cgroupV2) Kill() error {
	return c.manager.Kill()
}

func (c *cgroupV2) Stats() (any, error) {
	return c.manager.Stat()
}

func (c *cgroupV2) Update(resources *specs.LinuxResources) error {
	return c.manager.Update(cgroup2.ToResources(hostResources(resources)))
}

func (c *cgroupV2) Delete() error {
	return c.manager.Delete()
}

func (c *cgroupV2) Handle() any {
	return c.manager
}
