package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// machine describes the host that bench ran on.
type machine struct {
	cpu      string
	cores    int
	memory   string
	kernel   string
	cgroupV2 bool
}

// describeMachine reads the CPU model, memory size and kernel release from /proc. A value
// that cannot be read becomes "unknown", because it only labels the report.
func describeMachine() machine {
	m := machine{cpu: "unknown", cores: runtime.NumCPU(), memory: "unknown", kernel: "unknown"}
	if model, ok := procField("/proc/cpuinfo", "model name"); ok {
		m.cpu = model
	}
	if total, ok := procField("/proc/meminfo", "MemTotal"); ok {
		if kib, err := strconv.ParseInt(strings.TrimSuffix(total, " kB"), 10, 64); err == nil {
			m.memory = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
		}
	}
	if release, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(release))
	}
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	m.cgroupV2 = err == nil
	return m
}

// procField returns the value of the first "key: value" line with the given key.
func procField(path, key string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), ":")
		if ok && strings.TrimSpace(name) == key {
			return strings.TrimSpace(value), true
		}
	}
	return "", false
}

// runcVersion returns the first line of `runc --version`, such as "runc version 1.5.3".
func runcVersion(ctx context.Context, binary string) (string, error) {
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("run %s --version: %w", binary, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}
