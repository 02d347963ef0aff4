package installer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Distro is one way containerd comes on a node, with the paths and units the installer
// needs. The paths are paths on the host.
type Distro struct {
	Name string
	// Config is containerd's root config. k3s and rke2 render it from a template at
	// every start, so Reaper never edits it there.
	Config string
	// Templates are the templates k3s and rke2 render Config from, by config schema
	// version. Reaper's tables go there when Config imports no drop-in folder.
	Templates map[int64]string
	// DropInDir is a folder the distribution merges drop-ins from whatever Config
	// imports, or empty.
	DropInDir string
	// Socket is containerd's CRI socket.
	Socket string
	// Units are the systemd units that run containerd, the most common first.
	Units []string
}

const rancherTemplateDir = "agent/etc/containerd"

// Distros are the supported distributions, plain containerd last.
var Distros = []Distro{
	rancher("k3s", "/var/lib/rancher/k3s", []string{"k3s.service", "k3s-agent.service"}),
	rancher("rke2", "/var/lib/rancher/rke2", []string{"rke2-server.service", "rke2-agent.service"}),
	{
		// k0s generates Config and merges the CRI tables of the files in DropInDir into
		// a file that Config imports.
		Name:      "k0s",
		Config:    "/etc/k0s/containerd.toml",
		DropInDir: "/etc/k0s/containerd.d",
		Socket:    "/run/k0s/containerd.sock",
		Units:     []string{"k0sworker.service", "k0scontroller.service"},
	},
	{
		// microk8s renders its containerd.toml from Config, replacing ${SNAP} and
		// ${SNAP_DATA}, at every start of containerd, so Reaper edits Config.
		Name:   "microk8s",
		Config: "/var/snap/microk8s/current/args/containerd-template.toml",
		Socket: "/var/snap/microk8s/common/run/containerd.sock",
		Units:  []string{"snap.microk8s.daemon-containerd.service"},
	},
	{
		Name:   "containerd",
		Config: DefaultContainerdConfig,
		Socket: "/run/containerd/containerd.sock",
		Units:  []string{DefaultSystemdUnit},
	},
}

func rancher(name, dataDir string, units []string) Distro {
	dir := filepath.Join(dataDir, rancherTemplateDir)
	return Distro{
		Name:   name,
		Config: filepath.Join(dir, "config.toml"),
		Templates: map[int64]string{
			2: filepath.Join(dir, "config.toml.tmpl"),
			3: filepath.Join(dir, "config-v3.toml.tmpl"),
		},
		Socket: "/run/k3s/containerd/containerd.sock",
		Units:  units,
	}
}

// DetectDistro returns the first distribution whose config is on the host below
// hostRoot, and plain containerd when none is.
func DetectDistro(hostRoot string) Distro {
	host := Options{HostRoot: hostRoot}
	for _, d := range Distros {
		if _, err := os.Stat(host.onHost(d.Config)); err == nil {
			return d
		}
	}
	return Distros[len(Distros)-1]
}

// DistroByName returns the distribution called name.
func DistroByName(name string) (Distro, error) {
	names := make([]string, 0, len(Distros))
	for _, d := range Distros {
		if d.Name == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return Distro{}, fmt.Errorf("unknown distribution %q: use auto or one of %s", name, strings.Join(names, ", "))
}

// DistroForConfig returns the distribution whose root config is path, or plain containerd
// with path as its root config.
func DistroForConfig(path string) Distro {
	for _, d := range Distros {
		if d.Config == path {
			return d
		}
	}
	plain := Distros[len(Distros)-1]
	plain.Config = path
	return plain
}
