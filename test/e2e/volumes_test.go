package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestVolumes runs a container with the mounts a kubelet passes for a ConfigMap, a Secret
// key through subPath and an emptyDir, at paths the host does not have, and checks them from
// inside the container and from the host.
func TestVolumes(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "volumes", s.handler)
	suffix := randomSuffix(t)

	// A folder standing in for /var/lib/kubelet/pods/<uid>/volumes.
	volumes := sharedDir(t)
	configMap := writeVolume(t, volumes, "configmap", "app.conf", "mode=e2e\n")
	secret := filepath.Join(writeVolume(t, volumes, "secret", "token", "s3cret\n"), "token")
	emptyDir := writeVolume(t, volumes, "empty-dir", "", "")

	configPath := "/etc/reaper-e2e-" + suffix + "/config"
	secretPath := "/var/run/secrets/reaper-e2e-" + suffix + "/token"
	cachePath := "/reaper-e2e-" + suffix + "/cache"
	config := shellConfig("volumes", `cat "$1/app.conf" "$2"
echo from-container > "$3/out" && echo cache-written
touch "$1/new" 2>/dev/null && echo config-writable || echo config-read-only
echo started; exec sleep 600`, configPath, secretPath, cachePath)
	config.Mounts = []*runtimeapi.Mount{
		{ContainerPath: configPath, HostPath: configMap, Readonly: true},
		{ContainerPath: secretPath, HostPath: secret, Readonly: true},
		{ContainerPath: cachePath, HostPath: emptyDir},
	}
	c := s.runContainer(t, p, config)
	entries := waitLogLine(t, c, "stdout", "started")

	want := []string{"mode=e2e", "s3cret", "cache-written", "config-read-only", "started"}
	if got := logLines(entries, "stdout"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("the container printed %q, expected %q", got, want)
	}

	if data, err := os.ReadFile(filepath.Join(emptyDir, "out")); err != nil || string(data) != "from-container\n" {
		t.Errorf("the emptyDir folder on the host holds out = %q (%v), expected what the container wrote", data, err)
	}

	resp := s.execSync(t, c, "/bin/cat", secretPath)
	if got := string(resp.GetStdout()); got != "s3cret\n" {
		t.Errorf("an exec reads %q from %s (stderr %q), expected the secret", got, secretPath, resp.GetStderr())
	}

	destinations := []string{"/etc/reaper-e2e-" + suffix, "/run/secrets/reaper-e2e-" + suffix, "/reaper-e2e-" + suffix}
	assertNotOnHost(t, "while the container runs", suffix, destinations)

	s.stopContainer(t, c, 0)
	s.removeContainer(t, c)
	assertNotOnHost(t, "after the container is removed", suffix, destinations)
}

// TestVolumeIsolation mounts different content at the same path in two pods, and each
// reads its own.
func TestVolumeIsolation(t *testing.T) {
	s := start(t)
	path := "/opt/reaper-e2e-" + randomSuffix(t) + "/data"
	volumes := sharedDir(t)

	var containers []*container
	for _, name := range []string{"first", "second"} {
		p := s.runPod(t, "isolation-"+name, s.handler)
		config := shellConfig(name, "echo started; exec sleep 600")
		config.Mounts = []*runtimeapi.Mount{{ContainerPath: path, HostPath: writeVolume(t, volumes, name, "owner", name)}}
		c := s.runContainer(t, p, config)
		waitLogLine(t, c, "stdout", "started")
		containers = append(containers, c)
	}

	for i, name := range []string{"first", "second"} {
		resp := s.execSync(t, containers[i], "/bin/cat", path+"/owner")
		if got := string(resp.GetStdout()); got != name {
			t.Errorf("the %s pod reads %q from %s/owner (stderr %q), expected its own volume's %q", name, got, path, resp.GetStderr(), name)
		}
	}
}

// TestPodFiles checks the files a kubelet prepares for every container: /etc/resolv.conf
// from the pod's DNS config, /etc/hosts and /etc/hostname, and /dev/termination-log, whose
// content the kubelet reads from the host after the container exits.
func TestPodFiles(t *testing.T) {
	s := start(t)
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatalf("read the host's /etc/resolv.conf: %v", err)
	}

	p := s.runPodWith(t, "podfiles", s.handler, func(config *runtimeapi.PodSandboxConfig) {
		config.Hostname = "reaper-e2e-podfiles"
		config.DnsConfig = &runtimeapi.DNSConfig{
			Servers:  []string{"10.96.0.10"},
			Searches: []string{"reaper-e2e.svc.cluster.local", "svc.cluster.local"},
			Options:  []string{"ndots:5"},
		}
	})

	files := sharedDir(t)
	hosts := filepath.Join(files, "etc-hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\n10.1.2.3\treaper-e2e-podfiles\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	termination := filepath.Join(files, "termination-log")
	if err := os.WriteFile(termination, nil, 0o666); err != nil {
		t.Fatal(err)
	}

	config := shellConfig("podfiles", `cat /etc/resolv.conf; echo ---; cat /etc/hostname; echo ---
getent hosts reaper-e2e-podfiles; echo "bye from reaper" > /dev/termination-log; exit 3`)
	config.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/etc/hosts", HostPath: hosts},
		{ContainerPath: "/dev/termination-log", HostPath: termination},
	}
	c := s.runContainer(t, p, config)
	status := s.waitExited(t, c)
	if status.GetExitCode() != 3 {
		t.Errorf("the container exited with %d, expected 3", status.GetExitCode())
	}

	entries, err := readLog(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Join(logLines(entries, "stdout"), "\n")
	for _, want := range []string{"nameserver 10.96.0.10", "search reaper-e2e.svc.cluster.local svc.cluster.local", "options ndots:5", "---\nreaper-e2e-podfiles\n---", "10.1.2.3        reaper-e2e-podfiles"} {
		if !strings.Contains(out, want) {
			t.Errorf("the container's view lacks %q; it printed:\n%s", want, out)
		}
	}

	if data, err := os.ReadFile(termination); err != nil || string(data) != "bye from reaper\n" {
		t.Errorf("the termination message file on the host holds %q (%v), expected the container's message", data, err)
	}
	if _, err := os.Stat("/dev/termination-log"); !os.IsNotExist(err) {
		t.Errorf("/dev/termination-log exists on the host (%v); it belongs to the container's view only", err)
	}
	if now, err := os.ReadFile("/etc/resolv.conf"); err != nil || string(now) != string(hostResolv) {
		t.Errorf("the host's /etc/resolv.conf changed (%v)", err)
	}
}

// runPodWith is runPod with a sandbox config that edit changes first.
func (s *suite) runPodWith(t *testing.T, name, handler string, edit func(*runtimeapi.PodSandboxConfig)) *pod {
	t.Helper()
	s.requireHandler(t, handler)
	config := s.podConfig(t, name)
	edit(config)

	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox with handler %q failed: %v", handler, err)
	}
	p := &pod{id: resp.GetPodSandboxId(), handler: handler, config: config, logDir: config.GetLogDirectory()}
	t.Cleanup(func() { s.removePodQuietly(t, p) })
	return p
}

// writeVolume creates the folder name in volumes, with one file when file is not empty.
func writeVolume(t *testing.T, volumes, name, file, content string) string {
	t.Helper()
	dir := filepath.Join(volumes, name)
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if file != "" {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// assertNotOnHost fails t when one of paths exists on the host or a host mount point
// mentions marker.
func assertNotOnHost(t *testing.T, when, marker string, paths []string) {
	t.Helper()
	for _, path := range paths {
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s: %s exists on the host (%v); a mount point belongs to the container's view only", when, path, err)
		}
	}

	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, marker) {
			t.Errorf("%s: the host's mount table has %q", when, line)
		}
	}
}
