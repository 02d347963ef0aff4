package initproc

import (
	"encoding/json"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// RunInit is the body of the init helper. It never returns: it either execve's the
// workload or exits with status 127 after reporting the error to its parent.
func RunInit() {
	// The Go runtime may move goroutines between threads; prctl and execve act on the
	// calling thread, so stay on one.
	goruntime.LockOSThread()

	status := os.NewFile(StatusFD, "init-status")
	syscall.CloseOnExec(StatusFD)

	if err := runInit(status); err != nil {
		report(status, Status{Error: err.Error()})
		fmt.Fprintf(os.Stderr, "reaper init: %v\n", err)
		os.Exit(127)
	}
}

func runInit(status *os.File) error {
	config, err := readInitConfig()
	if err != nil {
		return err
	}

	if err := enterNetworkNamespace(config.NetworkNamespace); err != nil {
		return err
	}
	if err := writeNetworkSysctls(config.NetworkSysctls); err != nil {
		return err
	}
	// The protected mode's mount namespace has a read-only /proc, so the OOM score is
	// written through the host's /proc first.
	oomWarning, err := applyOOMScoreAdj(config.OOMScoreAdj)
	if err != nil {
		return err
	}
	if err := enterMountNamespace(config); err != nil {
		return err
	}

	if err := applyIdentity(config); err != nil {
		return err
	}
	var warnings []string
	if oomWarning != "" {
		warnings = append(warnings, oomWarning)
	}

	if err := os.Chdir(config.Cwd); err != nil {
		return fmt.Errorf("failed to change to the working directory %q: %w", config.Cwd, err)
	}

	path := config.Path
	if path == "" {
		path, err = LookPath(config.Args[0], config.Env, config.Cwd)
		if err != nil {
			return err
		}
	}

	if config.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("failed to set no_new_privs: %w", err)
		}
	}

	report(status, Status{Ready: true, Warnings: warnings})

	if err := waitForStart(); err != nil {
		return err
	}

	if err := unix.Exec(path, config.Args, config.Env); err != nil {
		return fmt.Errorf("exec %q: %w", config.Args[0], err)
	}
	return nil
}

func readInitConfig() (*InitConfig, error) {
	pipe := os.NewFile(ConfigFD, "init-config")
	defer pipe.Close()

	var config InitConfig
	if err := json.NewDecoder(pipe).Decode(&config); err != nil {
		return nil, fmt.Errorf("failed to read the init config from the parent: %w", err)
	}

	if len(config.Args) == 0 {
		return nil, fmt.Errorf("invalid OCI process: args is empty, set at least the executable")
	}
	return &config, nil
}

// applyIdentity applies what needs privileges first (rlimits, bounding set), then
// the user, then the capabilities that the user keeps.
func applyIdentity(config *InitConfig) error {
	caps, err := parseCapabilities(config.Capabilities)
	if err != nil {
		return err
	}

	if err := applyRlimits(config.Rlimits); err != nil {
		return err
	}

	if err := caps.dropBounding(); err != nil {
		return err
	}

	// Keep the permitted set across the uid change; apply then trims it to the spec's.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to keep capabilities across the uid change: %w", err)
	}

	if err := applyUser(config.User); err != nil {
		return err
	}
	return caps.apply()
}

// applyUser sets the groups, gid, uid and umask of the spec's user. Go applies each
// credential call to every thread of the process.
func applyUser(user specs.User) error {
	groups := make([]int, 0, len(user.AdditionalGids))
	for _, gid := range user.AdditionalGids {
		groups = append(groups, int(gid))
	}

	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("failed to set additional gids %v: %w", user.AdditionalGids, err)
	}

	if err := syscall.Setgid(int(user.GID)); err != nil {
		return fmt.Errorf("failed to set gid %d: %w", user.GID, err)
	}

	if err := syscall.Setuid(int(user.UID)); err != nil {
		return fmt.Errorf("failed to set uid %d: %w", user.UID, err)
	}

	// A change of uid makes the process non-dumpable, which leaves /proc/self/fd owned
	// by root, and the exec FIFO is opened through it. execve resets the flag.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to set the process dumpable: %w", err)
	}

	if user.Umask != nil {
		syscall.Umask(int(*user.Umask))
	}
	return nil
}

// waitForStart blocks until Start opens the exec FIFO for reading, then writes the
// byte that lets Start return: the workload runs next.
func waitForStart() error {
	path := "/proc/self/fd/" + strconv.Itoa(FIFOFD)
	fifo, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("failed to open the exec FIFO: %w", err)
	}
	defer fifo.Close()

	unix.Close(FIFOFD)

	if _, err := fifo.Write([]byte{0}); err != nil {
		return fmt.Errorf("failed to write to the exec FIFO: %w", err)
	}
	return nil
}

func report(status *os.File, message Status) {
	// A write error means the parent no longer reads the pipe, because reaper-runtime
	// create has exited. RunInit also prints an error to stderr.
	_ = json.NewEncoder(status).Encode(message)
}
