package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// hostProcess identifies a process by pid and start time, so a reused pid is not mistaken for
// the process that was seen before.
type hostProcess struct {
	pid       int
	startTime uint64 // field 22 of /proc/<pid>/stat, in clock ticks since boot
}

func (p hostProcess) String() string {
	return fmt.Sprintf("pid %d (start time %d)", p.pid, p.startTime)
}

// lookupProcess returns the process with this pid as it is now.
func lookupProcess(pid int) (hostProcess, error) {
	start, err := processStartTime(pid)
	if err != nil {
		return hostProcess{}, err
	}
	return hostProcess{pid: pid, startTime: start}, nil
}

// alive reports whether the same process (same pid and start time) still exists. A zombie
// counts as gone because it no longer runs.
func (p hostProcess) alive() bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return false
	}
	fields, err := statFields(stat)
	if err != nil {
		return false
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil || start != p.startTime {
		return false
	}
	return fields[0] != "Z"
}

func processStartTime(pid int) (uint64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the stat file of pid %d: %w", pid, err)
	}
	fields, err := statFields(stat)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d: invalid start time %q: %w", pid, fields[19], err)
	}
	return start, nil
}

// statFields returns the fields of /proc/<pid>/stat after the command name, so fields[0] is
// the state (field 3) and fields[19] the start time (field 22).
func statFields(stat []byte) ([]string, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return nil, fmt.Errorf("invalid stat line %q", stat)
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 20 {
		return nil, fmt.Errorf("stat line has %d fields after the command name, expected at least 20", len(fields))
	}
	return fields, nil
}

// processInfo is what the tests read about a process from /proc.
type processInfo struct {
	pid     int
	cmdline string // arguments joined by spaces
	exe     string
	cwd     string
}

func (p processInfo) String() string {
	return fmt.Sprintf("pid %d exe=%q cwd=%q cmdline=%q", p.pid, p.exe, p.cwd, p.cmdline)
}

// listProcesses reads every process on the host. Processes that exit during the scan are
// left out, and fields that cannot be read stay empty.
func listProcesses() ([]processInfo, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var procs []processInfo
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		procs = append(procs, processInfo{
			pid:     pid,
			cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")),
			exe:     exe,
			cwd:     cwd,
		})
	}
	return procs, nil
}

// processesMentioning returns the processes whose command line or working directory contains
// any of the strings. The test process itself is left out.
func processesMentioning(needles ...string) ([]processInfo, error) {
	procs, err := listProcesses()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var found []processInfo
	for _, p := range procs {
		if p.pid == self {
			continue
		}
		for _, needle := range needles {
			if needle != "" && (strings.Contains(p.cmdline, needle) || strings.Contains(p.cwd, needle)) {
				found = append(found, p)
				break
			}
		}
	}
	return found, nil
}

// readEnviron returns the environment a process was started with, one KEY=value per entry.
func readEnviron(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil, fmt.Errorf("read the environment of pid %d: %w", pid, err)
	}
	var env []string
	for _, entry := range strings.Split(string(data), "\x00") {
		if entry != "" {
			env = append(env, entry)
		}
	}
	return env, nil
}

// processUIDs returns the real, effective, saved and filesystem uid of a process.
func processUIDs(pid int) ([]string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("read the status of pid %d: %w", pid, err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "Uid:"); ok {
			return strings.Fields(rest), nil
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read the status of pid %d: %w", pid, err)
	}
	return nil, fmt.Errorf("the status of pid %d has no Uid line", pid)
}

// statusField returns the value of one "Name:\tvalue" line of /proc/<pid>/status, such as
// "CapEff" or "NoNewPrivs".
func statusField(pid int, name string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", fmt.Errorf("read the status of pid %d: %w", pid, err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), name+":"); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	if err := scanner.Err(); err != nil {
		return "", fmt.Errorf("read the status of pid %d: %w", pid, err)
	}
	return "", fmt.Errorf("the status of pid %d has no %s line", pid, name)
}

// killLeftover sends SIGKILL to a process a test's container started, if that same process
// still runs, so a runtime that failed to end it leaves nothing on the host. It reports
// whether it had to kill.
func killLeftover(t *testing.T, proc hostProcess) bool {
	t.Helper()
	if !proc.alive() {
		return false
	}
	if err := syscall.Kill(proc.pid, syscall.SIGKILL); err != nil {
		t.Logf("cleanup: kill leftover %s: %v", proc, err)
	}
	return true
}

// namespaceOf returns the namespace link of a process, such as "mnt:[4026531841]".
func namespaceOf(pid string, kind string) (string, error) {
	link, err := os.Readlink(filepath.Join("/proc", pid, "ns", kind))
	if err != nil {
		return "", fmt.Errorf("read the %s namespace of %s: %w", kind, pid, err)
	}
	return link, nil
}

// pathsMentioning walks root and returns every path whose base name contains one of the ids,
// such as state directories, bundles, FIFOs and sockets. Paths that vanish during the walk
// are skipped.
func pathsMentioning(root string, ids ...string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		name := entry.Name()
		for _, id := range ids {
			if id != "" && strings.Contains(name, id) {
				found = append(found, path)
				if entry.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	return found, nil
}

// socketsIn returns the names of the unix sockets directly inside dir.
func socketsIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var sockets []string
	for _, entry := range entries {
		if entry.Type()&fs.ModeSocket != 0 {
			sockets = append(sockets, entry.Name())
		}
	}
	sort.Strings(sockets)
	return sockets, nil
}

// cgroupMount is one mounted cgroup hierarchy, read from /proc/self/mountinfo.
type cgroupMount struct {
	// root is the path inside the hierarchy that is mounted, "/" unless a cgroup namespace
	// or a bind mount shows only a subtree.
	root       string
	mountPoint string
	v2         bool
	// controllers lists the v1 controllers of the hierarchy, such as "memory" or "cpu".
	controllers []string
}

// cgroupHierarchies returns every mounted cgroup v1 and v2 hierarchy.
func cgroupHierarchies() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var mounts []cgroupMount
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		// Fields: id parent major:minor root mountpoint options... - fstype source superoptions
		pre, post, ok := strings.Cut(scanner.Text(), " - ")
		if !ok {
			continue
		}
		preFields := strings.Fields(pre)
		postFields := strings.Fields(post)
		if len(preFields) < 5 || len(postFields) < 1 {
			continue
		}
		mount := cgroupMount{root: preFields[3], mountPoint: preFields[4]}
		switch postFields[0] {
		case "cgroup2":
			mount.v2 = true
		case "cgroup":
			if len(postFields) >= 3 {
				mount.controllers = strings.Split(postFields[2], ",")
			}
		default:
			continue
		}
		mounts = append(mounts, mount)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// cgroupMounts returns the mount points of every cgroup v1 and v2 hierarchy.
func cgroupMounts() ([]string, error) {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	var mounts []string
	for _, h := range hierarchies {
		mounts = append(mounts, h.mountPoint)
	}
	return mounts, nil
}

// cgroupLine is one line of /proc/<pid>/cgroup: "id:controllers:path".
type cgroupLine struct {
	controllers []string // empty for the cgroup v2 line "0::path"
	path        string
}

func readCgroupLines(pid string) ([]cgroupLine, error) {
	data, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
	if err != nil {
		return nil, fmt.Errorf("read the cgroups of %s: %w", pid, err)
	}
	var lines []cgroupLine
	for _, text := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		fields := strings.SplitN(text, ":", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("/proc/%s/cgroup: invalid line %q", pid, text)
		}
		line := cgroupLine{path: fields[2]}
		if fields[1] != "" {
			line.controllers = strings.Split(fields[1], ",")
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// hostUsesCgroupV1 reports whether resource controllers sit in cgroup v1 hierarchies, as
// /proc/self/cgroup shows them. A host in hybrid mode (v1 controllers plus an empty v2
// hierarchy, such as one at /sys/fs/cgroup/unified) counts as v1, because its controllers are
// there. A named hierarchy such as "name=systemd" has no controller.
func hostUsesCgroupV1() (bool, error) {
	lines, err := readCgroupLines("self")
	if err != nil {
		return false, err
	}
	for _, line := range lines {
		for _, controller := range line.controllers {
			if !strings.HasPrefix(controller, "name=") {
				return true, nil
			}
		}
	}
	return false, nil
}

// processCgroup is the cgroup of a process in the hierarchy of one controller.
type processCgroup struct {
	v2 bool
	// path is the cgroup path as /proc/<pid>/cgroup shows it.
	path string
	// dir is the cgroup's directory on the host.
	dir string
}

// cgroupOf returns the cgroup of pid for controller ("memory", "cpu", ...): the v1 hierarchy
// that has the controller, or the v2 hierarchy on a host without v1 controllers.
func cgroupOf(pid int, controller string) (processCgroup, error) {
	v1, err := hostUsesCgroupV1()
	if err != nil {
		return processCgroup{}, err
	}
	lines, err := readCgroupLines(strconv.Itoa(pid))
	if err != nil {
		return processCgroup{}, err
	}
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return processCgroup{}, err
	}

	var path string
	found := false
	for _, line := range lines {
		if (v1 && slices.Contains(line.controllers, controller)) || (!v1 && len(line.controllers) == 0) {
			path, found = line.path, true
			break
		}
	}
	if !found {
		return processCgroup{}, fmt.Errorf("/proc/%d/cgroup has no line for the %s controller (cgroup v1: %t): %+v", pid, controller, v1, lines)
	}
	for _, h := range hierarchies {
		if (v1 && slices.Contains(h.controllers, controller)) || (!v1 && h.v2) {
			relative, err := filepath.Rel(h.root, path)
			if err != nil || strings.HasPrefix(relative, "..") {
				return processCgroup{}, fmt.Errorf("cgroup %s of pid %d lies outside the mounted subtree %s of %s", path, pid, h.root, h.mountPoint)
			}
			return processCgroup{v2: !v1, path: path, dir: filepath.Join(h.mountPoint, relative)}, nil
		}
	}
	return processCgroup{}, fmt.Errorf("no mounted cgroup hierarchy has the %s controller (cgroup v1: %t)", controller, v1)
}

// read returns the trimmed content of one file of the cgroup, such as "memory.max".
func (c processCgroup) read(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		return "", fmt.Errorf("read cgroup file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// memoryLimit returns memory.limit_in_bytes (v1) or memory.max (v2).
func (c processCgroup) memoryLimit() (string, error) {
	if c.v2 {
		return c.read("memory.max")
	}
	return c.read("memory.limit_in_bytes")
}

// cpuMax returns the CPU quota and period as "QUOTA PERIOD" in microseconds, the format of
// cpu.max (v2), built from cpu.cfs_quota_us and cpu.cfs_period_us on v1.
func (c processCgroup) cpuMax() (string, error) {
	if c.v2 {
		return c.read("cpu.max")
	}
	quota, err := c.read("cpu.cfs_quota_us")
	if err != nil {
		return "", err
	}
	period, err := c.read("cpu.cfs_period_us")
	if err != nil {
		return "", err
	}
	return quota + " " + period, nil
}

// removeCgroupTree removes the cgroup directory parent, and the cgroups below it, from every
// hierarchy. A cgroup that still has processes cannot be removed, and that is returned as an
// error naming it.
func removeCgroupTree(parent string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, mount := range mounts {
		top := filepath.Join(mount, parent)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		walkErr := filepath.WalkDir(top, func(path string, entry fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if entry.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		if walkErr != nil {
			errs = append(errs, fmt.Errorf("walk cgroup %s: %w", top, walkErr))
			continue
		}
		// Children before parents: rmdir only works on a cgroup without children.
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// sharedDir creates a directory that any user can enter and read, for workloads that run as
// another user. It is removed when the test ends.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "reaper-e2e-")
	if err != nil {
		t.Fatalf("create a work directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("make %s readable for every user: %v", dir, err)
	}
	return dir
}
