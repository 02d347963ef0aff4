package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestExecSync(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "execsync", s.handler)
	workDir := sharedDir(t)
	token := "exec-" + randomSuffix(t)
	const uid = 65534

	config := containerConfig("target", "/bin/sleep", "600")
	config.WorkingDir = workDir
	config.Envs = []*runtimeapi.KeyValue{{Key: "E2E_EXEC_TOKEN", Value: []byte(token)}}
	config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		RunAsUser: &runtimeapi.Int64Value{Value: uid},
	}
	c := s.runContainer(t, p, config)

	cases := []struct {
		name   string
		cmd    []string
		stdout string
		stderr string
		code   int32
	}{
		{name: "stdout", cmd: []string{"/bin/echo", "hello " + token}, stdout: "hello " + token + "\n"},
		{name: "stderr", cmd: []string{"/bin/sh", "-c", `echo "oops $1" >&2`, "sh", token}, stderr: "oops " + token + "\n"},
		{name: "exit code", cmd: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 42"}, stdout: "out\n", stderr: "err\n", code: 42},
		{name: "env", cmd: []string{"/bin/sh", "-c", `echo "$E2E_EXEC_TOKEN"`}, stdout: token + "\n"},
		{name: "cwd", cmd: []string{"/bin/pwd"}, stdout: workDir + "\n"},
		{name: "user", cmd: []string{"/usr/bin/id", "-u"}, stdout: fmt.Sprintf("%d\n", uid)},
		// A bare name is looked up in the container's PATH, as the kubelet's exec does.
		{name: "path lookup", cmd: []string{"echo", "found"}, stdout: "found\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			resp := s.execSync(t, c, tc.cmd...)
			t.Logf("ExecSync %q returned after %s", tc.cmd, time.Since(begin))

			if got := resp.GetExitCode(); got != tc.code {
				t.Errorf("ExecSync %q returned exit code %d, expected %d (stderr %q)", tc.cmd, got, tc.code, resp.GetStderr())
			}
			if got := string(resp.GetStdout()); got != tc.stdout {
				t.Errorf("ExecSync %q returned stdout %q, expected %q", tc.cmd, got, tc.stdout)
			}
			if got := string(resp.GetStderr()); got != tc.stderr {
				t.Errorf("ExecSync %q returned stderr %q, expected %q", tc.cmd, got, tc.stderr)
			}
		})
	}
}

// TestExecSyncMissing checks that an exec of a command that does not exist fails with a message
// that names it. The message may come as a CRI error or as the output of a non-zero exit. The
// call must return instead of hanging.
func TestExecSyncMissing(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "execmissing", s.handler)
	c := s.runContainer(t, p, containerConfig("target", "/bin/sleep", "600"))

	cases := []struct {
		name    string
		command string
	}{
		{name: "absolute path", command: "/nonexistent/e2e-binary"},
		{name: "bare name", command: "no-such-command-e2e"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			resp, err := s.tryExecSync(c, execSyncTimeout, tc.command)
			t.Logf("ExecSync of the missing command %q returned after %s: err=%v exit=%d stdout=%q stderr=%q",
				tc.command, time.Since(begin), err, resp.GetExitCode(), resp.GetStdout(), resp.GetStderr())

			if err != nil {
				if strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "deadline") {
					t.Fatalf("ExecSync of the missing command %q hung until its timeout: %v", tc.command, err)
				}
				if !strings.Contains(err.Error(), tc.command) {
					t.Errorf("the ExecSync error for the missing command does not name %q: %v", tc.command, err)
				}
				return
			}
			if resp.GetExitCode() == 0 {
				t.Fatalf("ExecSync of the missing command %q succeeded with exit code 0", tc.command)
			}
			output := string(resp.GetStdout()) + string(resp.GetStderr())
			if !strings.Contains(output, tc.command) {
				t.Errorf("ExecSync of the missing command %q exited with %d but its output does not name it: %q",
					tc.command, resp.GetExitCode(), output)
			}
		})
	}

	// The container must still serve execs after the failed ones.
	resp := s.execSync(t, c, "/bin/echo", "still-alive")
	if got := string(resp.GetStdout()); got != "still-alive\n" {
		t.Errorf("ExecSync after the failed execs returned stdout %q, expected %q", got, "still-alive\n")
	}
}
