package installer

import (
	"os"
	"path/filepath"
	"strings"
)

// RunningConfig returns the root config that the running containerd was started with,
// from its command line in procDir (the host's /proc), or "" when no containerd runs, it
// names no config, or containerds with different configs run.
func RunningConfig(procDir string) string {
	found := ""
	for _, args := range processArgs(procDir, "containerd") {
		config := flagValue(args, "--config", "-c")
		switch {
		case config == "" || config == found:
		case found == "":
			found = config
		default:
			return ""
		}
	}
	return found
}

// processArgs returns the command lines of the processes in procDir whose command name
// is comm.
func processArgs(procDir, comm string) [][]string {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}

	var found [][]string
	for _, entry := range entries {
		if entry.Name()[0] < '0' || entry.Name()[0] > '9' {
			continue
		}
		name, err := os.ReadFile(filepath.Join(procDir, entry.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(name)) != comm {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(procDir, entry.Name(), "cmdline"))
		if err != nil {
			continue
		}
		found = append(found, strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"))
	}
	return found
}

// flagValue returns the value of the first of flags in args, given as --flag=value or
// --flag value, or "".
func flagValue(args []string, flags ...string) string {
	for i, arg := range args {
		for _, flag := range flags {
			if value, ok := strings.CutPrefix(arg, flag+"="); ok {
				return value
			}
			if arg == flag && i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return ""
}
