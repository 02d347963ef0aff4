package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"reaper.dev/reaper/runtime/initproc"
)

// spawnOptions describe one init helper to start.
type spawnOptions struct {
	executable string
	config     initproc.InitConfig
	execFIFO   string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	terminal   bool
	start      func(*exec.Cmd) error
}

// initHandle is the parent's side of a running init helper.
type initHandle struct {
	pid      int
	status   *os.File
	warnings []string
}

// spawnInit starts the init helper and waits until it is ready to execve the
// workload, or returns the error it reported.
func spawnInit(opts spawnOptions) (*initHandle, error) {
	if err := unix.Mkfifo(opts.execFIFO, 0o622); err != nil {
		return nil, fmt.Errorf("failed to create the exec FIFO %s: %w", opts.execFIFO, err)
	}
	// Set the mode again, because mkfifo applies the umask.
	if err := os.Chmod(opts.execFIFO, 0o622); err != nil {
		return nil, fmt.Errorf("failed to set the mode of the exec FIFO %s: %w", opts.execFIFO, err)
	}

	// The helper may drop to an unprivileged user before it opens the FIFO, so it gets
	// an O_PATH descriptor and reopens it through /proc/self/fd. The FIFO's mode lets
	// any user open it for writing; its 0700 state directory keeps others out.
	fifoFD, err := unix.Open(opts.execFIFO, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open the exec FIFO %s: %w", opts.execFIFO, err)
	}
	fifo := os.NewFile(uintptr(fifoFD), opts.execFIFO)
	defer fifo.Close()

	configR, configW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("failed to create the init config pipe: %w", err)
	}
	defer configR.Close()
	defer configW.Close()

	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("failed to create the init status pipe: %w", err)
	}
	defer statusW.Close()

	cmd := exec.Command(opts.executable, initproc.InitArg)
	if opts.executable == "/proc/self/exe" {
		// Show the caller's own name in ps instead.
		cmd.Args[0] = os.Args[0]
	}
	cmd.Env = []string{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.stdin, opts.stdout, opts.stderr
	cmd.ExtraFiles = []*os.File{configR, statusW, fifo}
	// A new session makes the container's processes a process group of their own,
	// which Kill with all set signals as a whole.
	// A tty process also makes its stdin (fd 0 in the child) its controlling terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: opts.terminal, Ctty: 0}

	start := opts.start
	if start == nil {
		start = (*exec.Cmd).Start
	}
	if err := start(cmd); err != nil {
		statusR.Close()
		return nil, fmt.Errorf("failed to start the init helper %s: %w", opts.executable, err)
	}

	handle := &initHandle{pid: cmd.Process.Pid, status: statusR}
	if err := handle.sendConfig(configW, opts.config); err != nil {
		handle.abort()
		return nil, err
	}
	configR.Close()
	statusW.Close()

	if err := handle.waitReady(); err != nil {
		handle.abort()
		return nil, err
	}
	return handle, nil
}

func (h *initHandle) sendConfig(pipe *os.File, config initproc.InitConfig) error {
	if err := json.NewEncoder(pipe).Encode(config); err != nil {
		return fmt.Errorf("failed to send the init config to pid %d: %w", h.pid, err)
	}
	return pipe.Close()
}

// waitReady reads the first status message of the helper.
func (h *initHandle) waitReady() error {
	var message initproc.Status
	err := json.NewDecoder(h.status).Decode(&message)
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("the init helper (pid %d) exited before it was ready; see the container's stderr", h.pid)
	case err != nil:
		return fmt.Errorf("failed to read the init status of pid %d: %w", h.pid, err)
	case message.Error != "":
		return errors.New(message.Error)
	case !message.Ready:
		return fmt.Errorf("unexpected init status from pid %d: %+v", h.pid, message)
	}
	h.warnings = message.Warnings
	return nil
}

// waitExec returns once the helper has execve'd the workload (the status pipe closes
// on exec) or reports why execve failed.
func (h *initHandle) waitExec() error {
	defer h.status.Close()

	var message initproc.Status
	err := json.NewDecoder(h.status).Decode(&message)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("failed to read the init status of pid %d: %w", h.pid, err)
	case message.Error != "":
		return errors.New(message.Error)
	}
	return nil
}

// abort kills a helper that failed. The caller's reaper (or the shim's) collects its exit.
func (h *initHandle) abort() {
	_ = syscall.Kill(h.pid, syscall.SIGKILL)
	h.status.Close()
}

type openResult struct {
	file *os.File
	err  error
}

// openExecFIFO lets the helper go on to execve: it opens the FIFO for reading, which
// unblocks the helper's open for writing, and reads the byte the helper writes.
// alive reports whether the helper still runs, so a dead helper does not block Start.
func openExecFIFO(path string, alive func() bool) error {
	opened := make(chan openResult, 1)
	go func() {
		file, err := os.OpenFile(path, os.O_RDONLY, 0)
		opened <- openResult{file, err}
	}()

	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case r := <-opened:
			if r.err != nil {
				return fmt.Errorf("failed to open the exec FIFO %s: %w", path, r.err)
			}
			return readStartByte(r.file)
		case <-ticker.C:
			if !alive() {
				unblockFIFO(path, opened)
				return errors.New("the init process exited before it was started")
			}
		}
	}
}

func readStartByte(file *os.File) error {
	defer file.Close()

	buf := make([]byte, 1)
	n, err := file.Read(buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("failed to read the exec FIFO: %w", err)
	}
	if n != 1 {
		return errors.New("the init process exited before it was started")
	}
	return nil
}

// unblockFIFO opens the write side once so the goroutine blocked in open returns.
func unblockFIFO(path string, opened <-chan openResult) {
	writer, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		writer.Close()
	}

	if r := <-opened; r.file != nil {
		r.file.Close()
	}
}
