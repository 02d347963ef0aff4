package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestAttachStdinOnce attaches to containers created with Stdin and StdinOnce, the way
// `kubectl run -i` does: what the session writes reaches the process, its output comes back,
// and closing the session's stdin closes the container's stdin, so the process reads EOF.
func TestAttachStdinOnce(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "attach", s.handler)
	token := randomSuffix(t)

	cases := []struct {
		name   string
		script string
		input  string
		output string
	}{
		// cat ends only at EOF on its stdin.
		{name: "cat", script: "cat", input: "hello " + token + "\n", output: "hello " + token + "\n"},
		{name: "read", script: `read -r line; echo "got $line"`, input: token + "\n", output: "got " + token + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config := shellConfig("attach-"+tc.name, tc.script)
			config.Stdin = true
			config.StdinOnce = true
			c := s.runContainer(t, p, config)

			u := s.attachURL(t, &runtimeapi.AttachRequest{ContainerId: c.id, Stdin: true, Stdout: true, Stderr: true})
			var stdout, stderr syncBuffer
			begin := time.Now()
			err := runStream(context.Background(), u, remotecommand.StreamOptions{
				Stdin:  strings.NewReader(tc.input),
				Stdout: &stdout,
				Stderr: &stderr,
			})
			t.Logf("the attach session ended after %s", time.Since(begin))
			if err != nil {
				t.Errorf("the attach session failed: %v", err)
			}
			if got := stdout.String(); got != tc.output {
				t.Errorf("the attach session received stdout %q, expected %q", got, tc.output)
			}
			if got := stderr.String(); got != "" {
				t.Errorf("the attach session received stderr %q, expected nothing", got)
			}

			status := s.waitExited(t, c)
			if status.GetExitCode() != 0 {
				t.Errorf("the attached container exited with code %d, expected 0 after EOF on its stdin", status.GetExitCode())
			}
			waitLogLine(t, c, "stdout", strings.TrimSuffix(tc.output, "\n"))
		})
	}
}

// TestTTYLog checks that the output of a container created with Tty reaches its CRI log. A
// terminal merges stderr into stdout, so both lines appear on the stdout stream.
func TestTTYLog(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "ttylog", s.handler)
	token := randomSuffix(t)

	config := shellConfig("tty", `echo "tty-out $1"; echo "tty-err $1" >&2; tty`, token)
	config.Tty = true
	c := s.runContainer(t, p, config)
	status := s.waitExited(t, c)
	if status.GetExitCode() != 0 {
		t.Errorf("the tty container exited with code %d, expected 0; `tty` exits with 1 when stdin is not a terminal", status.GetExitCode())
	}

	entries := waitLogLinePrefix(t, c, "stdout", "/dev/pts/")
	lines := logLines(entries, "stdout")
	for _, want := range []string{"tty-out " + token, "tty-err " + token} {
		if !slices.Contains(lines, want) {
			t.Errorf("the stdout lines of the tty container's log lack %q: %q", want, lines)
		}
	}
	if stderr := logLines(entries, "stderr"); len(stderr) > 0 {
		t.Errorf("the tty container's log has stderr lines %q, expected everything on stdout", stderr)
	}
}
