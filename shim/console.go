package shim

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/containerd/console"
	"github.com/containerd/fifo"
)

// openConsole connects a tty process: the process gets the pty's slave as stdin,
// stdout and stderr, and the shim copies between the master and containerd's FIFOs.
// With a tty, stderr is merged into stdout, as CRI expects.
func (pio *processIO) openConsole(ctx context.Context, epoller *console.Epoller, id, stdinPath, stdoutPath string) error {
	master, slavePath, err := console.NewPty()
	if err != nil {
		return fmt.Errorf("failed to allocate a pty for process %q: %w", id, err)
	}
	pio.closers = append(pio.closers, master)

	slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("failed to open the pty %s: %w", slavePath, err)
	}
	pio.stdin, pio.stdout, pio.stderr = slave, slave, slave

	// The epoller turns the EIO that reads return once the slave closes into a wait, so
	// output is read to the end. shutdownConsole then ends the copy.
	epollConsole, err := epoller.Add(master)
	if err != nil {
		return fmt.Errorf("failed to watch the pty of process %q: %w", id, err)
	}
	pio.console, pio.epoller = epollConsole, epoller

	if err := pio.copyConsoleOutput(ctx, id, stdoutPath); err != nil {
		return err
	}
	return pio.copyConsoleInput(ctx, id, stdinPath)
}

func (pio *processIO) copyConsoleOutput(ctx context.Context, id, stdoutPath string) error {
	if stdoutPath == "" {
		pio.copies.Add(1)
		go pio.copy(ctx, id, "tty", nopWriteCloser{io.Discard}, pio.console)
		return nil
	}

	path, err := fifoPath(stdoutPath)
	if err != nil {
		return fmt.Errorf("invalid stdout of process %q: %w", id, err)
	}

	writer, err := fifo.OpenFifo(ctx, path, syscall.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("failed to open the stdout FIFO %s: %w", path, err)
	}
	pio.closers = append(pio.closers, writer)

	keepOpen, err := fifo.OpenFifo(ctx, path, syscall.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("failed to open the stdout FIFO %s for reading: %w", path, err)
	}
	pio.closers = append(pio.closers, keepOpen)

	pio.copies.Add(1)
	go pio.copy(ctx, id, "tty", writer, pio.console)
	return nil
}

func (pio *processIO) copyConsoleInput(ctx context.Context, id, stdinPath string) error {
	if stdinPath == "" {
		return nil
	}

	reader, err := pio.openStdinFIFO(ctx, id, stdinPath)
	if err != nil {
		return err
	}

	go func() {
		_, _ = io.Copy(pio.console, reader)
	}()
	return nil
}

// resize sets the pty's window size; a process without a tty ignores it.
func (pio *processIO) resize(width, height uint32) error {
	if pio.console == nil {
		return nil
	}
	return pio.console.Resize(console.WinSize{Width: uint16(width), Height: uint16(height)})
}

// shutdownConsole ends the output copy once the process has exited and the
// remaining output is read.
func (pio *processIO) shutdownConsole() {
	if pio.console != nil {
		_ = pio.console.Shutdown(pio.epoller.CloseConsole)
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
