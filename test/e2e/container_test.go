package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestLogStreams(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "logs", s.handler)
	token := randomSuffix(t)

	script := fmt.Sprintf(`echo "out-1 %[1]s"; echo "err-1 %[1]s" >&2; echo "out-2 %[1]s"; echo "err-2 %[1]s" >&2`, token)
	c := s.runContainer(t, p, shellConfig("logs", script))
	status := s.waitExited(t, c)
	if status.GetExitCode() != 0 {
		t.Errorf("the logging container exited with code %d, expected 0", status.GetExitCode())
	}
	if status.GetLogPath() != c.logPath {
		t.Errorf("ContainerStatus reports log path %q, expected %q", status.GetLogPath(), c.logPath)
	}

	// containerd may still be writing the last lines when the exit is reported.
	entries := waitLogLine(t, c, "stderr", "err-2 "+token)
	cases := []struct {
		stream string
		want   []string
	}{
		{stream: "stdout", want: []string{"out-1 " + token, "out-2 " + token}},
		{stream: "stderr", want: []string{"err-1 " + token, "err-2 " + token}},
	}
	for _, tc := range cases {
		if got := logLines(entries, tc.stream); !slices.Equal(got, tc.want) {
			t.Errorf("%s lines in %s are %q, expected %q", tc.stream, c.logPath, got, tc.want)
		}
	}
}

func TestHostPID(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "hostpid", s.handler)
	marker := "reaper-e2e-hostpid-" + randomSuffix(t)
	pidFile := filepath.Join(sharedDir(t), "pid")

	script := `echo $$ > "$2"; echo started; while :; do sleep 1; done`
	c := s.runContainer(t, p, shellConfig("hostpid", script, marker, pidFile))
	waitLogLine(t, c, "stdout", "started")

	status, info := s.containerStatus(t, c)
	if status.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container state is %v, expected CONTAINER_RUNNING", status.GetState())
	}
	if info.Pid == 0 {
		t.Fatalf("verbose ContainerStatus of %s reports no pid", c.id)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("read the pid the container wrote: %v", err)
	}
	ownPid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("the container wrote an invalid pid %q: %v", data, err)
	}
	if ownPid != int(info.Pid) {
		t.Errorf("the container sees itself as pid %d but CRI reports pid %d; in the host PID namespace they are equal", ownPid, info.Pid)
	}

	proc := fmt.Sprint(info.Pid)
	cmdline := cmdlineOf(int(info.Pid))
	if !strings.Contains(cmdline, marker) {
		t.Errorf("host process %s has command line %q, expected it to contain the marker %q", proc, cmdline, marker)
	}

	root, err := os.Readlink(filepath.Join("/proc", proc, "root"))
	if err != nil {
		t.Fatalf("read the root directory of process %s: %v", proc, err)
	}
	if root != "/" {
		t.Errorf("process %s has root directory %q, expected the host's /", proc, root)
	}

	exe, err := os.Stat(filepath.Join("/proc", proc, "exe"))
	if err != nil {
		t.Fatalf("stat the executable of process %s: %v", proc, err)
	}
	hostShell, err := os.Stat("/bin/sh")
	if err != nil {
		t.Fatalf("stat the host's /bin/sh: %v", err)
	}
	if !os.SameFile(exe, hostShell) {
		t.Errorf("process %s does not run the host's /bin/sh", proc)
	}

	containerPidNS, err := namespaceOf(proc, "pid")
	if err != nil {
		t.Fatal(err)
	}
	hostPidNS, err := namespaceOf("self", "pid")
	if err != nil {
		t.Fatal(err)
	}
	if containerPidNS != hostPidNS {
		t.Errorf("process %s is in PID namespace %s, expected the host's %s", proc, containerPidNS, hostPidNS)
	}

	// Each container has a mount namespace of its own, where its volumes are mounted;
	// TestVolumes checks what it shows. TestCgroupLimits checks the cgroup.
	containerMntNS, err := namespaceOf(proc, "mnt")
	if err != nil {
		t.Fatal(err)
	}
	hostMntNS, err := namespaceOf("self", "mnt")
	if err != nil {
		t.Fatal(err)
	}
	if containerMntNS == hostMntNS {
		t.Errorf("process %s is in the host's mount namespace %s, expected one of its own", proc, hostMntNS)
	}
}

func TestExitCode(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "exitcode", s.handler)
	cases := []struct {
		name string
		code int32
	}{
		{name: "zero", code: 0},
		{name: "three", code: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := s.runContainer(t, p, shellConfig("exit-"+tc.name, fmt.Sprintf("exit %d", tc.code)))
			status := s.waitExited(t, c)

			if status.GetExitCode() != tc.code {
				t.Errorf("ContainerStatus reports exit code %d, expected %d", status.GetExitCode(), tc.code)
			}
			if status.GetFinishedAt() == 0 {
				t.Fatalf("ContainerStatus of an exited container has no FinishedAt")
			}
			if status.GetFinishedAt() < status.GetCreatedAt() {
				t.Errorf("FinishedAt %d is before CreatedAt %d", status.GetFinishedAt(), status.GetCreatedAt())
			}
			if now := time.Now().UnixNano(); status.GetFinishedAt() > now {
				t.Errorf("FinishedAt %d is in the future (now %d)", status.GetFinishedAt(), now)
			}
			// NOTE: FinishedAt may precede StartedAt for a short command, because containerd
			// v2.4.2 sets StartedAt only after the runtime's Start call returns.
			t.Logf("exit %d: reason %q, FinishedAt-StartedAt %s", tc.code, status.GetReason(),
				time.Duration(status.GetFinishedAt()-status.GetStartedAt()))
		})
	}
}

func TestStopGracePeriod(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "stop", s.handler)
	cases := []struct {
		name      string
		container string
		// script prints "ready" once its signal handling is in place.
		script  string
		timeout int64
		code    int32
		logLine string
	}{
		{
			name:      "trapped TERM",
			container: "trapped",
			script:    `trap 'echo "got TERM"' TERM; echo ready; while :; do sleep 0.2; done`,
			timeout:   2,
			code:      137,
			logLine:   "got TERM",
		},
		{
			name:      "default TERM",
			container: "default",
			script:    `echo ready; while :; do sleep 0.2; done`,
			timeout:   30,
			code:      143,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := s.runContainer(t, p, shellConfig(tc.container, tc.script))
			waitLogLine(t, c, "stdout", "ready")

			begin := time.Now()
			s.stopContainer(t, c, tc.timeout)
			elapsed := time.Since(begin)

			status := s.waitExited(t, c)
			if status.GetExitCode() != tc.code {
				t.Errorf("exit code after StopContainer (timeout %d s) is %d, expected %d", tc.timeout, status.GetExitCode(), tc.code)
			}
			if tc.logLine != "" {
				entries, err := readLog(c.logPath)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(logLines(entries, "stdout"), tc.logLine) {
					t.Errorf("stdout in %s has no line %q, so SIGTERM did not reach the process first: %q",
						c.logPath, tc.logLine, logLines(entries, "stdout"))
				}
			}
			t.Logf("StopContainer with timeout %d s returned after %s; exit code %d, reason %q",
				tc.timeout, elapsed, status.GetExitCode(), status.GetReason())
		})
	}
}

func TestProcessSpec(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "spec", s.handler)
	workDir := sharedDir(t)
	token := "hello-" + randomSuffix(t)
	const uid = 65534

	withSpec := func(config *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
		config.WorkingDir = workDir
		config.Envs = []*runtimeapi.KeyValue{{Key: "E2E_GREETING", Value: []byte(token)}}
		config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: &runtimeapi.Int64Value{Value: uid},
		}
		return config
	}

	t.Run("shell", func(t *testing.T) {
		script := `echo "cwd=$(pwd)"; echo "uid=$(id -u)"; echo "greeting=$E2E_GREETING"`
		c := s.runContainer(t, p, withSpec(shellConfig("shell", script)))
		status := s.waitExited(t, c)
		if status.GetExitCode() != 0 {
			t.Errorf("the shell exited with code %d, expected 0", status.GetExitCode())
		}

		entries := waitLogLinePrefix(t, c, "stdout", "greeting=")
		lines := logLines(entries, "stdout")
		for _, want := range []string{"cwd=" + workDir, fmt.Sprintf("uid=%d", uid), "greeting=" + token} {
			if !slices.Contains(lines, want) {
				t.Errorf("the shell did not print %q; its stdout: %q", want, lines)
			}
		}
	})

	// A process started directly keeps the environment it got from execve in /proc/<pid>/environ,
	// with no shell in between to add variables.
	t.Run("environ", func(t *testing.T) {
		c := s.runContainer(t, p, withSpec(containerConfig("environ", "/bin/sleep", "600")))
		_, info := s.containerStatus(t, c)
		if info.Pid == 0 {
			t.Fatalf("verbose ContainerStatus of %s reports no pid", c.id)
		}
		specEnv := info.RuntimeSpec.Process.Env
		if len(specEnv) == 0 {
			t.Fatalf("verbose ContainerStatus of %s has no runtimeSpec.process.env to compare with", c.id)
		}

		env, err := readEnviron(int(info.Pid))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("environment of pid %d: %q", info.Pid, env)
		if !slices.Contains(env, "E2E_GREETING="+token) {
			t.Errorf("the environment of pid %d lacks E2E_GREETING=%s: %q", info.Pid, token, env)
		}
		for _, name := range []string{"TTRPC_ADDRESS", "GRPC_ADDRESS", "NAMESPACE"} {
			if value, ok := lookupEnv(env, name); ok {
				t.Errorf("the shim's variable %s=%s leaked into the environment of pid %d", name, value, info.Pid)
			}
		}
		if got, want := sortedCopy(env), sortedCopy(specEnv); !slices.Equal(got, want) {
			t.Errorf("the environment of pid %d differs from the OCI spec's process.env:\n got: %q\nspec: %q", info.Pid, got, want)
		}

		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", info.Pid))
		if err != nil {
			t.Fatalf("read the working directory of pid %d: %v", info.Pid, err)
		}
		if cwd != workDir {
			t.Errorf("pid %d has working directory %q, expected %q", info.Pid, cwd, workDir)
		}

		uids, err := processUIDs(int(info.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for i, kind := range []string{"real", "effective", "saved", "filesystem"} {
			if i < len(uids) && uids[i] != strconv.Itoa(uid) {
				t.Errorf("pid %d has %s uid %s, expected %d", info.Pid, kind, uids[i], uid)
			}
		}
	})
}

func lookupEnv(env []string, name string) (string, bool) {
	for _, entry := range env {
		if value, ok := strings.CutPrefix(entry, name+"="); ok {
			return value, true
		}
	}
	return "", false
}

func sortedCopy(values []string) []string {
	out := slices.Clone(values)
	slices.Sort(out)
	return out
}
