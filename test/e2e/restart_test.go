package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerdCommand is how the suite's containerd was started, read from /proc, so that a
// restart runs the same command line with the same environment (PATH included) as
// hack/containerd-up.sh did.
type containerdCommand struct {
	process hostProcess
	args    []string
	env     []string
	dir     string
}

// readContainerdCommand reads the command of the containerd whose pid is in DIR/containerd.pid.
// Like the script, it accepts only a containerd started with DIR/config.toml.
func (s *suite) readContainerdCommand() (containerdCommand, error) {
	pidFile := filepath.Join(s.dir, "containerd.pid")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return containerdCommand{}, fmt.Errorf("read containerd's pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return containerdCommand{}, fmt.Errorf("%s contains %q, expected a pid: %w", pidFile, data, err)
	}

	process, err := lookupProcess(pid)
	if err != nil {
		return containerdCommand{}, fmt.Errorf("containerd from %s is not running: %w", pidFile, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return containerdCommand{}, fmt.Errorf("read containerd's command line: %w", err)
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	if !slices.Contains(args, filepath.Join(s.dir, "config.toml")) {
		return containerdCommand{}, fmt.Errorf("pid %d from %s runs %q, not a containerd with %s/config.toml", pid, pidFile, args, s.dir)
	}

	env, err := readEnviron(pid)
	if err != nil {
		return containerdCommand{}, err
	}
	dir, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return containerdCommand{}, fmt.Errorf("read containerd's working directory: %w", err)
	}
	return containerdCommand{process: process, args: args, env: env, dir: dir}, nil
}

// stopContainerd stops the suite's containerd with SIGTERM, as a service manager does, and
// waits until it has exited. It registers a cleanup that starts containerd again if the test
// ends before it does, so the following tests still have one.
func (s *suite) stopContainerd(t *testing.T) containerdCommand {
	t.Helper()
	command, err := s.readContainerdCommand()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(command.process.pid, syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM to containerd %s: %v", command.process, err)
	}
	t.Cleanup(func() {
		if current, err := s.readContainerdCommand(); err == nil && current.process.alive() {
			return
		}
		t.Logf("cleanup: containerd is down, starting it again")
		if err := s.startContainerd(command); err != nil {
			t.Errorf("cleanup: restart containerd: %v", err)
		}
	})
	waitFor(t, "containerd "+command.process.String()+" to exit after SIGTERM", func() (bool, error) {
		return !command.process.alive(), nil
	})
	return command
}

// startContainerd starts containerd with a command read by stopContainerd and waits until CRI
// reports ready. Like hack/containerd-up.sh, it starts containerd in the background of a shell
// in a new session, with its output appended to DIR/containerd.log, so containerd is an orphan
// and not a child of the test process. It writes the new pid to DIR/containerd.pid, where
// hack/containerd-down.sh looks for it.
func (s *suite) startContainerd(command containerdCommand) error {
	logPath := filepath.Join(s.dir, "containerd.log")
	script := `log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh", logPath}, command.args...)...)
	cmd.Env = command.env
	cmd.Dir = command.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("start containerd %q: %w", command.args, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("the shell that started containerd printed %q, expected its pid: %w", out, err)
	}

	pidFile := filepath.Join(s.dir, "containerd.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", pidFile, err)
	}
	return s.waitRuntimeReady()
}

// restartContainerd starts containerd again and fails t if it does not become ready.
func (s *suite) restartContainerd(t *testing.T, command containerdCommand) {
	t.Helper()
	if err := s.startContainerd(command); err != nil {
		t.Fatalf("restart containerd: %v\nlast lines of its log:\n%s", err, tailFile(filepath.Join(s.dir, "containerd.log"), 20))
	}
}

// TestContainerdRestart stops containerd while a pod runs and starts it again. The shim must
// keep the containers running, keep their output for the log, and report an exit that happened
// while containerd was down with its real exit code.
func TestContainerdRestart(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "restart", s.handler)
	dir := sharedDir(t)
	token := randomSuffix(t)

	// The writer prints a line when the test creates DIR/write, which it does while
	// containerd is down, then confirms in DIR/written.
	writerScript := `echo "before $1"
while [ ! -e "$2/write" ]; do sleep 0.1; done
echo "while down $1"
touch "$2/written"
while :; do sleep 1; done`
	writer := s.runContainer(t, p, shellConfig("writer", writerScript, token, dir))
	// The exiter exits with code 7 when the test creates DIR/exit.
	exiterScript := `echo ready; while [ ! -e "$1/exit" ]; do sleep 0.1; done; exit 7`
	exiter := s.runContainer(t, p, shellConfig("exiter", exiterScript, dir))
	waitLogLine(t, writer, "stdout", "before "+token)
	waitLogLine(t, exiter, "stdout", "ready")

	writerProc, err := lookupProcess(s.containerPid(t, writer))
	if err != nil {
		t.Fatal(err)
	}
	exiterProc, err := lookupProcess(s.containerPid(t, exiter))
	if err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	command := s.stopContainerd(t)
	t.Logf("containerd %s stopped after %s", command.process, time.Since(begin))

	if !writerProc.alive() {
		t.Fatalf("the writer container's %s ended when containerd stopped", writerProc)
	}
	for _, name := range []string{"write", "exit"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatalf("create the trigger file %s: %v", name, err)
		}
	}
	waitFor(t, "the writer to print its line while containerd is down", func() (bool, error) {
		_, err := os.Stat(filepath.Join(dir, "written"))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	})
	waitFor(t, "the exiter "+exiterProc.String()+" to exit while containerd is down", func() (bool, error) {
		return !exiterProc.alive(), nil
	})

	begin = time.Now()
	s.restartContainerd(t, command)
	t.Logf("containerd was ready again %s after its start", time.Since(begin))

	t.Run("running container", func(t *testing.T) {
		status, info := s.containerStatus(t, writer)
		if status.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("after the restart the writer is in state %v (exit code %d, reason %q), expected CONTAINER_RUNNING",
				status.GetState(), status.GetExitCode(), status.GetReason())
		}
		if int(info.Pid) != writerProc.pid {
			t.Errorf("after the restart CRI reports pid %d for the writer, expected %d", info.Pid, writerProc.pid)
		}
		if !writerProc.alive() {
			t.Errorf("the writer's %s no longer runs after the restart", writerProc)
		}
	})

	t.Run("log while down", func(t *testing.T) {
		waitLogLine(t, writer, "stdout", "while down "+token)
	})

	t.Run("exec after restart", func(t *testing.T) {
		resp := s.execSync(t, writer, "/bin/echo", "after "+token)
		if got, want := string(resp.GetStdout()), "after "+token+"\n"; got != want {
			t.Errorf("ExecSync after the restart returned stdout %q, expected %q", got, want)
		}
	})

	t.Run("exit while down", func(t *testing.T) {
		status := s.waitExited(t, exiter)
		t.Logf("the exiter: exit code %d, reason %q, message %q", status.GetExitCode(), status.GetReason(), status.GetMessage())
		if status.GetExitCode() != 7 {
			t.Errorf("the container that exited with code 7 while containerd was down is reported with exit code %d (reason %q)",
				status.GetExitCode(), status.GetReason())
		}
	})

	t.Run("pod ready", func(t *testing.T) {
		status, _ := s.podStatus(t, p)
		if status.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("after the restart the sandbox is in state %v, expected SANDBOX_READY", status.GetState())
		}
	})
}

// TestShimKilled kills a pod's shim with SIGKILL and checks that containerd cleans up after it:
// the container's processes end and CRI reports the container exited.
func TestShimKilled(t *testing.T) {
	s := start(t)
	socketsBefore, err := socketsIn(s.socketDir())
	if err != nil {
		t.Fatal(err)
	}
	p := s.runPod(t, "shimkill", s.handler)
	marker := "reaper-e2e-shimkill-" + randomSuffix(t)
	script := `sleep 300 & echo "child=$!"; while :; do sleep 1; done`
	c := s.runContainer(t, p, shellConfig("victim", script, marker))

	entries := waitLogLinePrefix(t, c, "stdout", "child=")
	childPid, err := pidFromLine(entries, "child=")
	if err != nil {
		t.Fatal(err)
	}
	mainPid := s.containerPid(t, c)
	var tracked []hostProcess
	for _, pid := range []int{mainPid, childPid} {
		proc, err := lookupProcess(pid)
		if err != nil {
			t.Fatalf("a process of the running container is missing: %v", err)
		}
		tracked = append(tracked, proc)
	}
	t.Cleanup(func() {
		for _, proc := range tracked {
			if killLeftover(t, proc) {
				t.Errorf("the container's %s still ran at the end of the test and was killed", proc)
			}
		}
	})

	shimPid := shimOf(t, mainPid)
	shim, err := lookupProcess(shimPid)
	if err != nil {
		t.Fatal(err)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", shimPid)); !strings.HasPrefix(cwd, s.dir+"/") {
		t.Fatalf("the shim pid %d works in %q, outside the suite's containerd directory %s; not killing it", shimPid, cwd, s.dir)
	}

	if err := syscall.Kill(shimPid, syscall.SIGKILL); err != nil {
		t.Fatalf("send SIGKILL to the shim %s: %v", shim, err)
	}
	t.Logf("killed the shim %s", shim)

	for _, proc := range tracked {
		waitFor(t, proc.String()+" to be killed after its shim died", func() (bool, error) {
			return !proc.alive(), fmt.Errorf("%s still runs: %s", proc, cmdlineOf(proc.pid))
		})
	}
	status := s.waitExited(t, c)
	t.Logf("after the shim was killed the container is exited with code %d, reason %q", status.GetExitCode(), status.GetReason())

	waitFor(t, "the sandbox to be reported not ready", func() (bool, error) {
		status, _ := s.podStatus(t, p)
		return status.GetState() == runtimeapi.PodSandboxState_SANDBOX_NOTREADY, fmt.Errorf("sandbox state %v", status.GetState())
	})

	s.stopAndRemovePod(t, p)
	s.checkPodGone(t, podTrace{
		pod:           p,
		containerIDs:  []string{c.id},
		processes:     tracked,
		markers:       []string{marker},
		socketsBefore: socketsBefore,
	})
}
