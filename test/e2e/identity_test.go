package e2e

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/capability"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// capabilityMask returns a capability set from its "CAP_*" names, with bit n set for
// capability number n, the format of CapEff and CapBnd in /proc/<pid>/status.
func capabilityMask(names []string) (uint64, error) {
	numbers := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		numbers["CAP_"+strings.ToUpper(c.String())] = c
	}
	var mask uint64
	for _, name := range names {
		c, ok := numbers[name]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", name)
		}
		mask |= 1 << uint(c)
	}
	return mask, nil
}

// capabilitySet reads one capability set ("CapEff", "CapBnd", ...) of a process.
func capabilitySet(pid int, name string) (uint64, error) {
	value, err := statusField(pid, name)
	if err != nil {
		return 0, err
	}
	mask, err := strconv.ParseUint(value, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d has an invalid %s %q: %w", pid, name, value, err)
	}
	return mask, nil
}

func TestCapabilities(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "caps", s.handler)

	testEff, err := capabilitySet(os.Getpid(), "CapEff")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name         string
		container    string
		capabilities *runtimeapi.Capability
		// effective is the expected CapEff, or 0 to expect the spec's effective set.
		effective uint64
	}{
		{name: "default", container: "default"},
		{
			name:         "drop all add NET_BIND_SERVICE",
			container:    "net-bind",
			capabilities: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}},
			effective:    1 << uint(capability.CAP_NET_BIND_SERVICE),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config := containerConfig(tc.container, "/bin/sleep", "600")
			config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{Capabilities: tc.capabilities}
			c := s.runContainer(t, p, config)
			pid := s.containerPid(t, c)
			_, info := s.containerStatus(t, c)

			specEff, err := capabilityMask(info.RuntimeSpec.Process.Capabilities.Effective)
			if err != nil {
				t.Fatalf("the OCI spec's effective capabilities: %v", err)
			}
			specBnd, err := capabilityMask(info.RuntimeSpec.Process.Capabilities.Bounding)
			if err != nil {
				t.Fatalf("the OCI spec's bounding capabilities: %v", err)
			}
			eff, err := capabilitySet(pid, "CapEff")
			if err != nil {
				t.Fatal(err)
			}
			bnd, err := capabilitySet(pid, "CapBnd")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("pid %d: CapEff %#x, CapBnd %#x; spec effective %#x, bounding %#x; the test's CapEff %#x",
				pid, eff, bnd, specEff, specBnd, testEff)

			if bits.OnesCount64(eff) >= bits.OnesCount64(testEff) {
				t.Errorf("the non-privileged container has %d effective capabilities (%#x), expected fewer than the %d of the host's root (%#x)",
					bits.OnesCount64(eff), eff, bits.OnesCount64(testEff), testEff)
			}
			if eff != specEff {
				t.Errorf("pid %d has CapEff %#x, expected the OCI spec's effective set %#x %v",
					pid, eff, specEff, info.RuntimeSpec.Process.Capabilities.Effective)
			}
			if bnd != specBnd {
				t.Errorf("pid %d has CapBnd %#x, expected the OCI spec's bounding set %#x %v",
					pid, bnd, specBnd, info.RuntimeSpec.Process.Capabilities.Bounding)
			}
			if tc.effective != 0 && eff != tc.effective {
				t.Errorf("pid %d has CapEff %#x, expected exactly %#x", pid, eff, tc.effective)
			}
		})
	}
}

func TestUserAndGroups(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "ids", s.handler)
	const (
		uid = 65534
		gid = 65534
	)
	supplemental := []int64{4321, 8765}

	script := `echo "uid=$(id -u)"; echo "gid=$(id -g)"; echo "groups=$(id -G)"`
	config := shellConfig("ids", script)
	config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		RunAsUser:          &runtimeapi.Int64Value{Value: uid},
		RunAsGroup:         &runtimeapi.Int64Value{Value: gid},
		SupplementalGroups: supplemental,
	}
	c := s.runContainer(t, p, config)
	status := s.waitExited(t, c)
	if status.GetExitCode() != 0 {
		t.Errorf("the id script exited with code %d, expected 0", status.GetExitCode())
	}

	entries := waitLogLinePrefix(t, c, "stdout", "groups=")
	lines := logLines(entries, "stdout")
	for _, want := range []string{fmt.Sprintf("uid=%d", uid), fmt.Sprintf("gid=%d", gid)} {
		if !slices.Contains(lines, want) {
			t.Errorf("`id` did not print %q; its stdout: %q", want, lines)
		}
	}
	var groups []string
	for _, line := range lines {
		if rest, ok := strings.CutPrefix(line, "groups="); ok {
			groups = strings.Fields(rest)
		}
	}
	for _, want := range append([]int64{gid}, supplemental...) {
		if !slices.Contains(groups, strconv.FormatInt(want, 10)) {
			t.Errorf("`id -G` printed the groups %q, expected them to include %d", groups, want)
		}
	}
}

func TestNoNewPrivs(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "nnp", s.handler)
	cases := []struct {
		name       string
		container  string
		noNewPrivs bool
		want       string
	}{
		{name: "escalation allowed", container: "allowed", noNewPrivs: false, want: "0"},
		// allowPrivilegeEscalation: false in the pod spec.
		{name: "escalation forbidden", container: "forbidden", noNewPrivs: true, want: "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config := containerConfig(tc.container, "/bin/sleep", "600")
			config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{NoNewPrivs: tc.noNewPrivs}
			c := s.runContainer(t, p, config)
			pid := s.containerPid(t, c)
			_, info := s.containerStatus(t, c)

			got, err := statusField(pid, "NoNewPrivs")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("pid %d has NoNewPrivs %s, expected %s for no_new_privs=%t (the OCI spec's noNewPrivileges is %t)",
					pid, got, tc.want, tc.noNewPrivs, info.RuntimeSpec.Process.NoNewPrivileges)
			}
		})
	}
}

// lowerOOMScoreForbidden reports whether this host forbids lowering a process's
// oom_score_adj, as it does for root without CAP_SYS_RESOURCE. It tries to lower the score of a
// child it starts and then kills.
func lowerOOMScoreForbidden(t *testing.T) bool {
	t.Helper()
	child := exec.Command("/bin/sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatalf("start a child to probe oom_score_adj: %v", err)
	}
	defer func() {
		_ = child.Process.Kill()
		_ = child.Wait() // The probe is killed, so Wait reports that signal.
	}()

	file := fmt.Sprintf("/proc/%d/oom_score_adj", child.Process.Pid)
	current, err := readInt(file)
	if err != nil {
		t.Fatal(err)
	}
	if current <= -1000 {
		return false
	}
	err = os.WriteFile(file, []byte(strconv.Itoa(current-1)), 0)
	if err == nil {
		return false
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
		return true
	}
	t.Fatalf("lower the oom_score_adj of pid %d from %d: %v", child.Process.Pid, current, err)
	return false
}

func readInt(file string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", file, err)
	}
	value, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("%s contains %q, expected an integer: %w", file, data, err)
	}
	return value, nil
}

// TestOOMScoreAdj checks that a container gets the oom_score_adj that CRI requests, not the one
// of its shim, which the shim inherits from containerd. Where the host forbids lowering a score,
// a request below the shim's own score may end at the shim's score instead.
func TestOOMScoreAdj(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "oomscore", s.handler)
	forbidden := lowerOOMScoreForbidden(t)
	t.Logf("this host forbids lowering oom_score_adj: %t", forbidden)

	cases := []struct {
		name    string
		request int64
	}{
		{name: "raise", request: 500},
		{name: "lower", request: -500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config := containerConfig("score-"+tc.name, "/bin/sleep", "600")
			config.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: tc.request}
			c := s.runContainer(t, p, config)
			pid := s.containerPid(t, c)
			_, info := s.containerStatus(t, c)
			if info.RuntimeSpec.Process.OOMScoreAdj == nil {
				t.Fatalf("the OCI spec of container %s has no process.oomScoreAdj", c.id)
			}
			want := *info.RuntimeSpec.Process.OOMScoreAdj

			shimPid := shimOf(t, pid)
			shimScore, err := readInt(fmt.Sprintf("/proc/%d/oom_score_adj", shimPid))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readInt(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("requested %d, CRI's spec %d, container pid %d has %d, its parent pid %d (%s) has %d",
				tc.request, want, pid, got, shimPid, cmdlineOf(shimPid), shimScore)

			if want == shimScore {
				t.Fatalf("CRI requests oom_score_adj %d, which the shim (pid %d) has too, so this case cannot tell them apart", want, shimPid)
			}

			switch {
			case got == want:
			case forbidden && want < shimScore && got == shimScore:
				t.Logf("the runtime kept the shim's score %d because this host forbids lowering it to %d", shimScore, want)
			case got == shimScore:
				t.Errorf("pid %d inherited the shim's oom_score_adj %d instead of getting %d from the OCI spec (lowering forbidden: %t)",
					pid, got, want, forbidden)
			default:
				t.Errorf("pid %d has oom_score_adj %d, expected %d from the OCI spec (the shim has %d, lowering forbidden: %t)",
					pid, got, want, shimScore, forbidden)
			}
		})
	}
}
