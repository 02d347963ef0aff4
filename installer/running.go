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
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return ""
	}

	found := ""
	for _, entry := range entries {
		if entry.Name()[0] < '0' || entry.Name()[0] > '9' {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procDir, entry.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "containerd" {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(procDir, entry.Name(), "cmdline"))
		if err != nil {
			continue
		}

		config := configFlag(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"))
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

// configFlag returns the value of containerd's --config or -c flag in args.
func configFlag(args []string) string {
	for i, arg := range args {
		for _, flag := range []string{"--config", "-c"} {
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
