package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// ProcessStartTime returns the start time of pid in clock ticks since boot (field 22
// of /proc/PID/stat). Together with the pid it names a process across pid reuse.
func ProcessStartTime(pid int) (uint64, error) {
	fields, err := readStat(pid)
	if err != nil {
		return 0, err
	}

	// fields[0] is the state (field 3), so the start time (field 22) is fields[19].
	startTime, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid start time in /proc/%d/stat: %w", pid, err)
	}
	return startTime, nil
}

// IsRunning reports whether pid is alive, not a zombie, and still the process that
// started at startTime.
func IsRunning(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}

	fields, err := readStat(pid)
	if err != nil {
		return false
	}

	if string(fields[0]) == "Z" || string(fields[0]) == "X" {
		return false
	}
	return string(fields[19]) == strconv.FormatUint(startTime, 10)
}

// readStat returns the fields of /proc/PID/stat that follow the command name, which
// may itself contain spaces and parentheses.
func readStat(pid int) ([][]byte, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}

	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return nil, fmt.Errorf("invalid /proc/%d/stat: no command name", pid)
	}

	fields := bytes.Fields(data[end+1:])
	if len(fields) < 20 {
		return nil, fmt.Errorf("invalid /proc/%d/stat: %d fields after the command name", pid, len(fields))
	}
	return fields, nil
}

// signalProcess sends sig to pid, or to every process of its process group when
// group is set, and reports a process that is already gone as ErrProcessDone.
func signalProcess(pid int, sig syscall.Signal, group bool) error {
	target := pid
	if group {
		target = -pid
	}

	err := syscall.Kill(target, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// GroupPids lists the processes of process group pgid, which is a container's main
// pid, by reading /proc.
func GroupPids(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("failed to list /proc: %w", err)
	}

	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}

		fields, err := readStat(pid)
		if err != nil {
			continue
		}

		// fields[2] is the process group (field 5 of /proc/PID/stat).
		if string(fields[2]) == strconv.Itoa(pgid) && string(fields[0]) != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
