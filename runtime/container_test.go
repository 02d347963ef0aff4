package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"reaper.dev/reaper/runtime/initproc"
)

// TestMain lets the test binary act as the init helper, as the shim binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == initproc.InitArg {
		initproc.RunInit()
	}
	os.Exit(m.Run())
}

func testProcess(args ...string) *specs.Process {
	return &specs.Process{
		Args: args,
		Env:  []string{"PATH=/usr/bin:/bin", "GREETING=hello"},
		Cwd:  "/tmp",
		User: specs.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())},
	}
}

// createTest creates a container whose stdout and stderr go to output, or to
// /dev/null when output is nil.
func createTest(t *testing.T, process *specs.Process, output *os.File) *Container {
	t.Helper()
	opts := CreateOptions{
		Root:       t.TempDir(),
		ID:         "test",
		Bundle:     t.TempDir(),
		Spec:       &specs.Spec{Process: process, Annotations: map[string]string{"k": "v"}},
		Executable: "/proc/self/exe",
	}
	if output != nil {
		opts.Stdout, opts.Stderr = output, output
	}

	container, err := Create(opts)
	if err != nil {
		t.Fatalf("Create failed: %v", err)
	}
	t.Cleanup(func() { _ = container.Delete(true) })
	return container
}

func waitStopped(t *testing.T, container *Container) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if container.Status() == StatusStopped {
			return
		}
	}
	t.Fatalf("container %s is still %s after 10s", container.ID, container.Status())
}

func TestContainerLifecycle(t *testing.T) {
	output, err := os.CreateTemp(t.TempDir(), "output")
	if err != nil {
		t.Fatal(err)
	}
	// env lists the environment the shell got, less the PWD that the shell adds itself.
	container := createTest(t, testProcess("sh", "-c", `echo "$GREETING from $(pwd) uid=$(id -u)"; unset PWD; env | sort`), output)

	if got := container.Status(); got != StatusCreated {
		t.Errorf("status after create = %s, want %s", got, StatusCreated)
	}

	if err := container.Start(); err != nil {
		t.Fatalf("Start failed: %v", err)
	}

	// The workload is a child of this test, so wait for it as its parent.
	var status syscall.WaitStatus
	if _, err := syscall.Wait4(container.Pid, &status, 0, nil); err != nil {
		t.Fatalf("wait for pid %d failed: %v", container.Pid, err)
	}
	waitStopped(t, container)

	got, err := os.ReadFile(output.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := "hello from /tmp uid=" + strconv.Itoa(os.Getuid()) + "\nGREETING=hello\nPATH=/usr/bin:/bin\n"
	if string(got) != want {
		t.Errorf("output = %q, want %q", got, want)
	}

	if err := container.Delete(false); err != nil {
		t.Errorf("Delete of a stopped container failed: %v", err)
	}
	if _, err := os.Stat(container.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state directory %s still exists after Delete: %v", container.Dir(), err)
	}
}

func TestContainerLoadAndState(t *testing.T) {
	container := createTest(t, testProcess("sleep", "30"), nil)
	root := filepath.Dir(container.Dir())

	loaded, err := Load(root, "test")
	if err != nil {
		t.Fatalf("Load failed: %v", err)
	}

	state := loaded.OCIState()
	if state.Status != StatusCreated || state.Pid != container.Pid || state.Annotations["k"] != "v" {
		t.Errorf("OCI state = %+v, want created, pid %d and the spec's annotations", state, container.Pid)
	}

	if err := loaded.Start(); err != nil {
		t.Fatalf("Start from a loaded container failed: %v", err)
	}
	if got := loaded.Status(); got != StatusRunning {
		t.Errorf("status after start = %s, want %s", got, StatusRunning)
	}

	if err := loaded.Delete(false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("Delete of a running container = %v, want an error that suggests --force", err)
	}

	if err := loaded.Delete(true); err != nil {
		t.Fatalf("Delete --force failed: %v", err)
	}
	_, _ = syscall.Wait4(container.Pid, nil, 0, nil)
}

func TestContainerSignal(t *testing.T) {
	container := createTest(t, testProcess("sleep", "30"), nil)
	if err := container.Start(); err != nil {
		t.Fatalf("Start failed: %v", err)
	}

	if err := container.Signal(syscall.SIGTERM, false); err != nil {
		t.Fatalf("Signal(SIGTERM) failed: %v", err)
	}

	var status syscall.WaitStatus
	if _, err := syscall.Wait4(container.Pid, &status, 0, nil); err != nil {
		t.Fatalf("wait failed: %v", err)
	}
	if status.Signal() != syscall.SIGTERM {
		t.Errorf("process ended with %v, want SIGTERM", status)
	}

	if err := container.Signal(syscall.SIGTERM, false); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Signal after exit = %v, want ErrNotRunning", err)
	}
}

func TestCreateErrors(t *testing.T) {
	cases := []struct {
		name    string
		process *specs.Process
		wantErr string
	}{
		{name: "missing command", process: testProcess("no-such-command-xyz"), wantErr: `exec "no-such-command-xyz": executable file not found in $PATH`},
		{name: "missing absolute path", process: testProcess("/nonexistent/binary"), wantErr: `exec "/nonexistent/binary": no such file on the host`},
		{name: "missing cwd", process: func() *specs.Process { p := testProcess("true"); p.Cwd = "/nonexistent/dir"; return p }(), wantErr: `working directory "/nonexistent/dir"`},
		{name: "empty args", process: testProcess(), wantErr: "args is empty"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			_, err := Create(CreateOptions{
				Root:       root,
				ID:         "bad",
				Spec:       &specs.Spec{Process: tc.process},
				Executable: "/proc/self/exe",
			})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Create error = %v, want one containing %q", err, tc.wantErr)
			}
			if _, err := os.Stat(filepath.Join(root, "bad")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("failed Create left its state directory behind: %v", err)
			}
		})
	}
}

func TestCreateDuplicateID(t *testing.T) {
	container := createTest(t, testProcess("sleep", "30"), nil)
	root := filepath.Dir(container.Dir())

	_, err := Create(CreateOptions{Root: root, ID: "test", Spec: &specs.Spec{Process: testProcess("true")}, Executable: "/proc/self/exe"})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Create with the same id = %v, want an already exists error", err)
	}
}

func TestContainerUnprivilegedUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test switches to uid 65534 and needs root; run the unit tests as root")
	}

	output, err := os.CreateTemp(t.TempDir(), "output")
	if err != nil {
		t.Fatal(err)
	}
	process := testProcess("sh", "-c", "id -u; id -g; id -G")
	process.User = specs.User{UID: 65534, GID: 65533, AdditionalGids: []uint32{65532, 65531}}
	container := createTest(t, process, output)

	if err := container.Start(); err != nil {
		t.Fatalf("Start as uid 65534 failed: %v", err)
	}
	if _, err := syscall.Wait4(container.Pid, nil, 0, nil); err != nil {
		t.Fatalf("wait failed: %v", err)
	}

	got, err := os.ReadFile(output.Name())
	if err != nil {
		t.Fatal(err)
	}
	// The kernel keeps supplementary groups sorted.
	if want := "65534\n65533\n65533 65531 65532\n"; string(got) != want {
		t.Errorf("id output = %q, want %q", got, want)
	}
}

// runOutput creates, starts and waits for a container, and returns its output.
func runOutput(t *testing.T, process *specs.Process) (string, *Container) {
	t.Helper()
	output, err := os.CreateTemp(t.TempDir(), "output")
	if err != nil {
		t.Fatal(err)
	}
	container := createTest(t, process, output)

	if err := container.Start(); err != nil {
		t.Fatalf("Start failed: %v", err)
	}
	if _, err := syscall.Wait4(container.Pid, nil, 0, nil); err != nil {
		t.Fatalf("wait failed: %v", err)
	}

	got, err := os.ReadFile(output.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(got), container
}

func TestContainerCapabilities(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test sets capabilities and needs root; run the unit tests as root")
	}

	cases := []struct {
		name string
		uid  uint32
		caps *specs.LinuxCapabilities
		want string
	}{
		{
			name: "root with two capabilities",
			caps: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"},
				Effective: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"},
				Permitted: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"},
			},
			// CAP_CHOWN is bit 0 and CAP_NET_BIND_SERVICE bit 10.
			want: "CapPrm:\t0000000000000401\nCapEff:\t0000000000000401\nCapBnd:\t0000000000000401\nCapAmb:\t0000000000000000\n",
		},
		{
			name: "root without capabilities",
			want: "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n",
		},
		{
			name: "unprivileged user with an ambient capability",
			uid:  65534,
			caps: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_NET_BIND_SERVICE"},
				Effective:   []string{"CAP_NET_BIND_SERVICE"},
				Permitted:   []string{"CAP_NET_BIND_SERVICE"},
				Inheritable: []string{"CAP_NET_BIND_SERVICE"},
				Ambient:     []string{"CAP_NET_BIND_SERVICE"},
			},
			want: "CapPrm:\t0000000000000400\nCapEff:\t0000000000000400\nCapBnd:\t0000000000000400\nCapAmb:\t0000000000000400\n",
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			process := testProcess("grep", "-E", "^Cap(Prm|Eff|Bnd|Amb)", "/proc/self/status")
			process.User = specs.User{UID: tc.uid, GID: tc.uid}
			process.Capabilities = tc.caps

			got, _ := runOutput(t, process)
			if got != tc.want {
				t.Errorf("capabilities of the workload:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestCreateInvalidCapability(t *testing.T) {
	process := testProcess("true")
	process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_FLY"}}

	_, err := Create(CreateOptions{Root: t.TempDir(), ID: "caps", Spec: &specs.Spec{Process: process}, Executable: "/proc/self/exe"})
	if err == nil || !strings.Contains(err.Error(), `invalid capability "CAP_FLY"`) {
		t.Errorf("Create error = %v, want one naming the invalid capability", err)
	}
}

func TestContainerRlimits(t *testing.T) {
	process := testProcess("sh", "-c", "ulimit -Sn; ulimit -Hn")
	process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1234, Hard: 2345}}

	got, _ := runOutput(t, process)
	if got != "1234\n2345\n" {
		t.Errorf("open file limits = %q, want soft 1234 and hard 2345", got)
	}
}

func TestContainerOOMScoreAdj(t *testing.T) {
	raised := 500
	process := testProcess("cat", "/proc/self/oom_score_adj")
	process.OOMScoreAdj = &raised

	got, _ := runOutput(t, process)
	if got != "500\n" {
		t.Errorf("oom_score_adj = %q, want 500", got)
	}
}

func TestContainerOOMScoreAdjClamped(t *testing.T) {
	current, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	lowered := -999
	process := testProcess("cat", "/proc/self/oom_score_adj")
	process.OOMScoreAdj = &lowered

	got, container := runOutput(t, process)

	// Hosts without CAP_SYS_RESOURCE keep the inherited value and report it.
	switch {
	case got == "-999\n":
		if len(container.Warnings()) != 0 {
			t.Errorf("warnings = %q after the score was set, want none", container.Warnings())
		}
	case got == string(current):
		if len(container.Warnings()) != 1 || !strings.Contains(container.Warnings()[0], "oom_score_adj -999") {
			t.Errorf("warnings = %q, want one that names oom_score_adj -999", container.Warnings())
		}
	default:
		t.Errorf("oom_score_adj = %q, want -999 or the inherited %q", got, current)
	}
}
