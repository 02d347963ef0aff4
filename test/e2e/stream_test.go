package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamTimeout bounds one streaming session, so a session that never ends fails the test.
const streamTimeout = 30 * time.Second

// execURL requests a streaming exec session from CRI and returns the URL of containerd's
// streaming server that serves it.
func (s *suite) execURL(t *testing.T, req *runtimeapi.ExecRequest) *url.URL {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.Exec(ctx, req)
	if err != nil {
		t.Fatalf("CRI Exec %q in container %s failed: %v", req.GetCmd(), req.GetContainerId(), err)
	}
	return parseStreamURL(t, resp.GetUrl())
}

// attachURL requests an attach session from CRI and returns its streaming URL.
func (s *suite) attachURL(t *testing.T, req *runtimeapi.AttachRequest) *url.URL {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.Attach(ctx, req)
	if err != nil {
		t.Fatalf("CRI Attach to container %s failed: %v", req.GetContainerId(), err)
	}
	return parseStreamURL(t, resp.GetUrl())
}

func parseStreamURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("CRI returned an invalid streaming URL %q: %v", raw, err)
	}
	// The tests send traffic only to loopback. containerd's streaming server listens on
	// 127.0.0.1 unless its stream_server_address sets another address.
	if host := u.Hostname(); host != "127.0.0.1" && host != "::1" && host != "localhost" {
		t.Fatalf("CRI returned the streaming URL %s, whose host %q is not a loopback address; set stream_server_address in containerd's CRI config to 127.0.0.1", raw, host)
	}
	return u
}

// runStream runs one SPDY session against a CRI streaming URL, as kubectl exec and attach do
// through the kubelet, and returns its error. An exit code other than 0 arrives as an error that
// implements utilexec.ExitError.
func runStream(ctx context.Context, u *url.URL, options remotecommand.StreamOptions) error {
	executor, err := remotecommand.NewSPDYExecutor(&rest.Config{}, http.MethodPost, u)
	if err != nil {
		return fmt.Errorf("create a SPDY executor for %s: %w", u, err)
	}
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	if err := executor.StreamWithContext(ctx, options); err != nil {
		return fmt.Errorf("stream %s: %w", u.Redacted(), err)
	}
	return nil
}

// startStream runs runStream in the background. The session's error arrives on the channel.
func startStream(u *url.URL, options remotecommand.StreamOptions) <-chan error {
	done := make(chan error, 1)
	go func() { done <- runStream(context.Background(), u, options) }()
	return done
}

// waitStream waits for a background session to end and returns its error.
func waitStream(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(streamTimeout + 5*time.Second):
		t.Fatalf("the streaming session did not end within %s", streamTimeout)
		return nil
	}
}

// exitCode returns the exit code carried by a session error, 0 for no error, and false when
// the error is not an exit code.
func exitCode(err error) (int, bool) {
	if err == nil {
		return 0, true
	}
	var exitErr utilexec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitStatus(), true
	}
	return 0, false
}

// syncBuffer is a bytes.Buffer that a session writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the complete and partial lines written so far, without "\r" line endings,
// which a terminal adds to every "\n".
func (b *syncBuffer) lines() []string {
	var lines []string
	for _, line := range strings.Split(b.String(), "\n") {
		lines = append(lines, strings.TrimSuffix(line, "\r"))
	}
	return lines
}

// sizeQueue feeds terminal sizes to a session. Closing it ends the session's resize loop.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	size, ok := <-q
	if !ok {
		return nil
	}
	return &size
}

func TestExecStreamStdin(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "execstdin", s.handler)
	c := s.runContainer(t, p, containerConfig("target", "/bin/sleep", "600"))

	input := "line one " + randomSuffix(t) + "\nline two\n"
	u := s.execURL(t, &runtimeapi.ExecRequest{
		ContainerId: c.id, Cmd: []string{"cat"}, Stdin: true, Stdout: true, Stderr: true,
	})
	t.Logf("streaming exec URL: %s", u.Redacted())

	var stdout, stderr syncBuffer
	begin := time.Now()
	err := runStream(context.Background(), u, remotecommand.StreamOptions{
		Stdin:  strings.NewReader(input),
		Stdout: &stdout,
		Stderr: &stderr,
	})
	t.Logf("the cat session ended after %s", time.Since(begin))
	if err != nil {
		t.Fatalf("the streaming exec of cat failed after stdin reached EOF: %v (stderr %q)", err, stderr.String())
	}
	if got := stdout.String(); got != input {
		t.Errorf("cat echoed %q, expected the input %q", got, input)
	}
	if got := stderr.String(); got != "" {
		t.Errorf("cat wrote %q to stderr, expected nothing", got)
	}
}

func TestExecStreamExitCode(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "execcode", s.handler)
	c := s.runContainer(t, p, containerConfig("target", "/bin/sleep", "600"))

	cases := []struct {
		name string
		code int
	}{
		{name: "zero", code: 0},
		{name: "five", code: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := s.execURL(t, &runtimeapi.ExecRequest{
				ContainerId: c.id,
				Cmd:         []string{"/bin/sh", "-c", fmt.Sprintf("echo out; echo err >&2; exit %d", tc.code)},
				Stdout:      true,
				Stderr:      true,
			})
			var stdout, stderr syncBuffer
			err := runStream(context.Background(), u, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})

			code, ok := exitCode(err)
			if !ok {
				t.Fatalf("the streaming exec failed without an exit code: %v", err)
			}
			if code != tc.code {
				t.Errorf("the streaming exec reported exit code %d, expected %d (error %v)", code, tc.code, err)
			}
			if got := stdout.String(); got != "out\n" {
				t.Errorf("the streaming exec's stdout is %q, expected %q", got, "out\n")
			}
			if got := stderr.String(); got != "err\n" {
				t.Errorf("the streaming exec's stderr is %q, expected %q", got, "err\n")
			}
		})
	}
}

// TestExecStreamTTY runs an interactive shell loop in a terminal: it prints its tty, then runs
// `stty size` for every line it reads. The test sends a resize to 40 rows by 100 columns and
// sends lines until `stty size` shows that size, because the resize travels on its own stream
// and may reach the terminal after the next command ran.
func TestExecStreamTTY(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "exectty", s.handler)
	c := s.runContainer(t, p, containerConfig("target", "/bin/sleep", "600"))

	u := s.execURL(t, &runtimeapi.ExecRequest{
		ContainerId: c.id,
		Cmd:         []string{"/bin/sh", "-c", `tty; while read -r line; do stty size; done`},
		Tty:         true,
		Stdin:       true,
		Stdout:      true,
	})
	stdinReader, stdinWriter := io.Pipe()
	defer stdinWriter.Close()
	sizes := make(sizeQueue, 1)
	var output syncBuffer
	done := startStream(u, remotecommand.StreamOptions{
		Stdin:             stdinReader,
		Stdout:            &output,
		Tty:               true,
		TerminalSizeQueue: sizes,
	})

	waitFor(t, "the exec to print its terminal", func() (bool, error) {
		for _, line := range output.lines() {
			if strings.HasPrefix(line, "/dev/pts/") {
				return true, nil
			}
		}
		return false, fmt.Errorf("output so far: %q", output.String())
	})

	sizes <- remotecommand.TerminalSize{Width: 100, Height: 40}
	waitFor(t, "`stty size` to print the new size 40 100", func() (bool, error) {
		if slices.Contains(output.lines(), "40 100") {
			return true, nil
		}
		if _, err := io.WriteString(stdinWriter, "size\n"); err != nil {
			return false, fmt.Errorf("write to the exec's stdin: %w", err)
		}
		return false, fmt.Errorf("output so far: %q", output.String())
	})

	// Ctrl-D at the start of a line is EOF for `read` on a terminal, so the loop ends and the
	// shell exits with 0.
	if _, err := io.WriteString(stdinWriter, "\x04"); err != nil {
		t.Fatalf("write Ctrl-D to the exec's stdin: %v", err)
	}
	err := waitStream(t, done)
	stdinWriter.Close()
	close(sizes)
	if err != nil {
		t.Errorf("the tty exec ended with an error after Ctrl-D: %v; output %q", err, output.String())
	}
}
