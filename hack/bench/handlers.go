package main

import (
	"fmt"
	"path/filepath"
	"strconv"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// pauseImage and placeholderImage are the images that hack/containerd-up.sh imports.
	// pauseImage contains only /pause, which blocks until SIGTERM. placeholderImage contains
	// only /placeholder, which prints one line and exits 0.
	pauseImage       = "localhost/reaper/pause:3.10"
	placeholderImage = "localhost/reaper/placeholder:1"

	// Paths inside a runc container where the sleeper binary and the clock directory are
	// bind-mounted from the host.
	sleeperInRunc  = "/sleeper"
	clockDirInRunc = "/clock"
	// keepAliveSeconds is how long a container that should keep running sleeps. bench stops it
	// long before.
	keepAliveSeconds = 3600
)

// handler describes the containers that bench runs with one CRI runtime handler. Reaper runs
// host binaries and ignores the image, while runc can run only what the image or a mount
// contains, so each measurement gets the closest equivalent program on both.
type handler struct {
	name string
	// keepAlive returns a container whose process runs until it is stopped. The start and
	// memory measurements start it.
	keepAlive func(name string, attempt uint32) *runtimeapi.ContainerConfig
	// execTarget returns the running container that ExecSync runs execCommand in.
	execTarget  func(name string) *runtimeapi.ContainerConfig
	execCommand []string
	// exiting returns a container that runs hack/bench/sleeper for delay, then writes its clock
	// to the file clockName in the bench's clock directory and exits 0.
	exiting func(name string, attempt uint32, delay string, clockName string) *runtimeapi.ContainerConfig
}

// reaperHandler runs host binaries: /bin/sleep keeps a container running, /bin/true is the
// exec, and the sleeper runs from its host path.
func reaperHandler(sleeper, clockDir string) *handler {
	keepAlive := func(name string, attempt uint32) *runtimeapi.ContainerConfig {
		return containerConfig(name, attempt, placeholderImage, "/bin/sleep", strconv.Itoa(keepAliveSeconds))
	}
	return &handler{
		name:      "reaper",
		keepAlive: keepAlive,
		execTarget: func(name string) *runtimeapi.ContainerConfig {
			return keepAlive(name, 0)
		},
		execCommand: []string{"/bin/true"},
		exiting: func(name string, attempt uint32, delay, clockName string) *runtimeapi.ContainerConfig {
			return containerConfig(name, attempt, placeholderImage,
				sleeper, "-for", delay, "-clock-file", filepath.Join(clockDir, clockName))
		},
	}
}

// runcHandler runs the images' own binaries where they fit: the pause image's /pause keeps a
// container running and /placeholder is the exec. The placeholder image has nothing that
// keeps running, so the exec target and the exiting container run the sleeper, bind-mounted
// read-only from the host, with the clock directory mounted beside it.
func runcHandler(sleeper, clockDir string) *handler {
	sleeperMount := &runtimeapi.Mount{ContainerPath: sleeperInRunc, HostPath: sleeper, Readonly: true}
	clockMount := &runtimeapi.Mount{ContainerPath: clockDirInRunc, HostPath: clockDir}
	return &handler{
		name: "runc",
		keepAlive: func(name string, attempt uint32) *runtimeapi.ContainerConfig {
			// No command: the image's entrypoint /pause runs.
			return containerConfig(name, attempt, pauseImage)
		},
		execTarget: func(name string) *runtimeapi.ContainerConfig {
			config := containerConfig(name, 0, placeholderImage, sleeperInRunc, "-for", fmt.Sprintf("%ds", keepAliveSeconds))
			config.Mounts = []*runtimeapi.Mount{sleeperMount}
			return config
		},
		execCommand: []string{"/placeholder"},
		exiting: func(name string, attempt uint32, delay, clockName string) *runtimeapi.ContainerConfig {
			config := containerConfig(name, attempt, placeholderImage,
				sleeperInRunc, "-for", delay, "-clock-file", clockDirInRunc+"/"+clockName)
			config.Mounts = []*runtimeapi.Mount{sleeperMount, clockMount}
			return config
		},
	}
}

// podConfig returns the sandbox configuration that the kubelet sends for a hostNetwork pod.
func podConfig(name, cgroupParent, logDir string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      name,
			Uid:       "uid-" + name,
			Namespace: podNamespace,
		},
		LogDirectory: logDir,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cgroupParent + "/pod-" + name,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_NODE,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
}

// containerConfig returns a container of image that runs command, or the image's entrypoint
// when command is empty.
func containerConfig(name string, attempt uint32, image string, command ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name, Attempt: attempt},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  command,
		LogPath:  fmt.Sprintf("%s-%d.log", name, attempt),
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}
