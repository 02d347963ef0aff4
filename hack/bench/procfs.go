package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// shimBinaries maps each runtime handler to the file name of its shim binary.
var shimBinaries = map[string]string{
	"reaper": "containerd-shim-reaper-v2",
	"runc":   "containerd-shim-runc-v2",
}

// shimProcess is a serving shim of the containerd under test.
type shimProcess struct {
	pid     int
	handler string
	// id is the shim's -id argument. With containerd 2.x a pod's containers share the shim
	// that containerd started for the pod sandbox, so it is the sandbox ID.
	id string
	// rssKiB is VmRSS from /proc/PID/status. It counts the pages that the shims of one binary
	// share, such as the binary's code, in each of them.
	rssKiB int64
	// anonKiB is RssAnon from /proc/PID/status: the resident anonymous memory, such as the heap
	// and the stacks, which no other shim shares.
	anonKiB int64
}

// findShims returns the serving shims whose -address is under dir. It reads /proc and
// skips processes that exit while it reads them. The reaper shim binary also runs as a pod's
// pause process and as a short-lived init helper, and neither has an -address argument.
func findShims(dir string) ([]shimProcess, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var shims []shimProcess
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		shim, ok, err := readShim(pid, dir)
		// The containerd under test runs as root, like bench, so a process whose files bench
		// may not read is not one of its shims.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, errProcessGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ok {
			shims = append(shims, shim)
		}
	}
	return shims, nil
}

// errProcessGone reports a process that exited while its /proc files were read.
var errProcessGone = errors.New("process exited")

func readShim(pid int, dir string) (shimProcess, bool, error) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	// Kernel threads have no executable, so this fails with ENOENT for them, as it does for a
	// process that exited. findShims skips both.
	exe, err := os.Readlink(filepath.Join(proc, "exe"))
	if err != nil {
		return shimProcess{}, false, err
	}
	handler := shimHandler(filepath.Base(strings.TrimSuffix(exe, " (deleted)")))
	if handler == "" {
		return shimProcess{}, false, nil
	}

	cmdline, err := os.ReadFile(filepath.Join(proc, "cmdline"))
	if err != nil {
		return shimProcess{}, false, err
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	address, id := flagValue(args, "-address"), flagValue(args, "-id")
	if address == "" || !underDir(address, dir) {
		return shimProcess{}, false, nil
	}

	rss, anon, err := readMemory(filepath.Join(proc, "status"))
	if err != nil {
		return shimProcess{}, false, err
	}
	return shimProcess{pid: pid, handler: handler, id: id, rssKiB: rss, anonKiB: anon}, true, nil
}

func shimHandler(binary string) string {
	for handler, name := range shimBinaries {
		if binary == name {
			return handler
		}
	}
	return ""
}

// flagValue returns the argument after name, or "" when name is missing or last.
func flagValue(args []string, name string) string {
	for i, arg := range args[:max(len(args)-1, 0)] {
		if arg == name {
			return args[i+1]
		}
	}
	return ""
}

func underDir(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// readMemory returns the VmRSS and RssAnon lines of a /proc/PID/status file in KiB.
func readMemory(statusFile string) (vmRSS, rssAnon int64, err error) {
	data, err := os.ReadFile(statusFile)
	if err != nil {
		return 0, 0, err
	}
	values := map[string]int64{}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok || (name != "VmRSS" && name != "RssAnon") {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("%s: unexpected %s line %q", statusFile, name, scanner.Text())
		}
		kib, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: invalid %s value: %w", statusFile, name, err)
		}
		values[name] = kib
	}
	if _, ok := values["VmRSS"]; !ok {
		// A zombie has no memory and no VmRSS line.
		return 0, 0, errProcessGone
	}
	return values["VmRSS"], values["RssAnon"], nil
}
