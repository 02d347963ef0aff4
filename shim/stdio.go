package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/fifo"
	"github.com/containerd/log"
)

// ioDrainTimeout bounds how long Delete waits for output to drain. A grandchild
// that escaped the container can hold a pipe open forever.
const ioDrainTimeout = 10 * time.Second

// processIO connects a process's stdio to containerd's FIFOs. The process uses
// pipes and one goroutine per stream copies between them and the FIFOs, so the shim
// can close the FIFOs even when a leftover process holds the pipes.
type processIO struct {
	// The pipe ends handed to the process; nil means /dev/null.
	stdin, stdout, stderr *os.File

	// stdinHold is a writer of the stdin FIFO that the shim keeps open, so the process
	// gets no EOF while the client reconnects. CloseIO closes it.
	stdinOnce sync.Once
	stdinHold io.Closer

	// console is the pty master of a tty process, watched by epoller.
	console *console.EpollConsole
	epoller *console.Epoller

	copies  sync.WaitGroup
	closers []io.Closer // FIFO ends and pipe read ends, closed after the copies end
}

// stdioPaths are the stdio FIFOs containerd names for a process.
type stdioPaths struct {
	stdin, stdout, stderr string
	terminal              bool
}

// newProcessIO opens the FIFOs named by containerd. An empty path leaves the stream
// unconnected.
func newProcessIO(ctx context.Context, epoller *console.Epoller, id string, paths stdioPaths) (_ *processIO, retErr error) {
	pio := &processIO{}
	defer func() {
		if retErr != nil {
			pio.closeAll()
		}
	}()

	if paths.terminal {
		return pio, pio.openConsole(ctx, epoller, id, paths.stdin, paths.stdout)
	}

	stdinPath, stdoutPath, stderrPath := paths.stdin, paths.stdout, paths.stderr
	var err error
	if pio.stdin, err = pio.openStdin(ctx, id, stdinPath); err != nil {
		return nil, err
	}
	if pio.stdout, err = pio.openStream(ctx, id, "stdout", stdoutPath); err != nil {
		return nil, err
	}
	if pio.stderr, err = pio.openStream(ctx, id, "stderr", stderrPath); err != nil {
		return nil, err
	}
	return pio, nil
}

func (pio *processIO) openStream(ctx context.Context, id, name, uri string) (*os.File, error) {
	if uri == "" {
		return nil, nil
	}

	path, err := fifoPath(uri)
	if err != nil {
		return nil, fmt.Errorf("invalid %s of process %q: %w", name, id, err)
	}

	writer, err := fifo.OpenFifo(ctx, path, syscall.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open the %s FIFO %s: %w", name, path, err)
	}
	pio.closers = append(pio.closers, writer)

	// A reader of our own keeps writes from failing with EPIPE while containerd, the
	// real reader, restarts; output then waits in the FIFO.
	keepOpen, err := fifo.OpenFifo(ctx, path, syscall.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open the %s FIFO %s for reading: %w", name, path, err)
	}
	pio.closers = append(pio.closers, keepOpen)

	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("failed to create the %s pipe: %w", name, err)
	}
	pio.closers = append(pio.closers, pipeR)

	pio.copies.Add(1)
	go pio.copy(ctx, id, name, writer, pipeR)
	return pipeW, nil
}

func (pio *processIO) copy(ctx context.Context, id, name string, dst io.WriteCloser, src io.Reader) {
	defer pio.copies.Done()

	// A pipe that the shim closed, as after a failed start, ends the copy normally.
	if _, err := io.Copy(dst, src); err != nil && !errors.Is(err, os.ErrClosed) {
		log.G(ctx).WithError(err).WithFields(log.Fields{"id": id, "stream": name}).Warn("copy of container output ended with an error")
	}
	// Closing the FIFO's writer is what tells containerd that the stream ended.
	dst.Close()
}

func (pio *processIO) openStdin(ctx context.Context, id, uri string) (*os.File, error) {
	if uri == "" {
		return nil, nil
	}

	reader, err := pio.openStdinFIFO(ctx, id, uri)
	if err != nil {
		return nil, err
	}

	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("failed to create the stdin pipe: %w", err)
	}

	go func() {
		_, _ = io.Copy(pipeW, reader)
		pipeW.Close()
	}()
	return pipeR, nil
}

// openStdinFIFO opens the stdin FIFO for reading, and holds a writer of it.
func (pio *processIO) openStdinFIFO(ctx context.Context, id, uri string) (io.ReadCloser, error) {
	path, err := fifoPath(uri)
	if err != nil {
		return nil, fmt.Errorf("invalid stdin of process %q: %w", id, err)
	}

	reader, err := fifo.OpenFifo(ctx, path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open the stdin FIFO %s: %w", path, err)
	}
	pio.closers = append(pio.closers, reader)

	hold, err := fifo.OpenFifo(ctx, path, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to open the stdin FIFO %s for writing: %w", path, err)
	}
	pio.stdinHold = hold
	return reader, nil
}

// closeStdin lets the process see EOF on stdin once the client has closed its end.
func (pio *processIO) closeStdin() {
	pio.stdinOnce.Do(func() {
		if pio.stdinHold != nil {
			pio.stdinHold.Close()
		}
	})
}

// closeChildEnds closes the shim's copies of the pipe ends the process now holds, so
// that the copies see EOF when the process and its children exit.
func (pio *processIO) closeChildEnds() {
	// A tty process holds the same slave file three times; a second Close is harmless.
	for _, file := range []*os.File{pio.stdin, pio.stdout, pio.stderr} {
		if file != nil {
			file.Close()
		}
	}
}

// wait blocks until all output is copied, at most ioDrainTimeout, then closes every
// FIFO and pipe.
func (pio *processIO) wait(ctx context.Context, id string) {
	done := make(chan struct{})
	go func() {
		pio.copies.Wait()
		close(done)
	}()

	select {
	case <-done:
	case <-time.After(ioDrainTimeout):
		log.G(ctx).WithFields(log.Fields{"id": id, "timeout": ioDrainTimeout}).
			Warn("timed out waiting for the output to drain; a process outside the container still holds its stdout or stderr")
	}
	pio.closeAll()
}

func (pio *processIO) closeAll() {
	pio.closeChildEnds()
	pio.closeStdin()
	for _, closer := range pio.closers {
		closer.Close()
	}
}

// fifoPath accepts containerd's stdio forms that name a FIFO: a plain path or a
// fifo:// URI. Logging binaries and files (binary://, file://) are not used by CRI.
func fifoPath(uri string) (string, error) {
	if !strings.Contains(uri, "://") {
		return uri, nil
	}

	parsed, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("invalid stdio URI %q: %w", uri, err)
	}

	if parsed.Scheme != "fifo" {
		return "", fmt.Errorf("stdio URI %q: scheme %q is not supported, use a FIFO path", uri, parsed.Scheme)
	}
	return parsed.Path, nil
}
