package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/pelletier/go-toml/v2"
	"sigs.k8s.io/yaml"
)

// The cgroup drivers of the kubelet.
const (
	CgroupDriverSystemd  = "systemd"
	CgroupDriverCgroupfs = "cgroupfs"
)

// DefaultKubeletConfig is the path of the kubelet config file that kubeadm writes.
const DefaultKubeletConfig = "/var/lib/kubelet/config.yaml"

// CgroupDriver is the kubelet's cgroup driver and where the installer learnt it.
type CgroupDriver struct {
	Driver string `json:"driver"`
	Source string `json:"source"`
}

// DetectCgroupDriver returns the kubelet's cgroup driver from the first source that sets
// one. First comes criDriver, from containerd's CRI RuntimeConfig, which a kubelet with
// the KubeletCgroupDriverFromCRI feature follows. Then the running kubelet's
// --cgroup-driver flag or --config file, found in procDir, and kubeadm's kubelet config.
// Then the SystemdCgroup option of the runc handler in cfg, which must match the
// kubelet's. Else the kubelet's default, cgroupfs.
func DetectCgroupDriver(opts Options, procDir, criDriver string, cfg *ContainerdConfig) (CgroupDriver, error) {
	if criDriver != "" {
		return CgroupDriver{criDriver, "containerd's CRI RuntimeConfig, which the kubelet follows when it supports that call"}, nil
	}

	kubeletConfig := DefaultKubeletConfig
	for _, args := range processArgs(procDir, "kubelet") {
		if driver := flagValue(args, "--cgroup-driver"); driver != "" {
			return checkedDriver(driver, "the kubelet's --cgroup-driver flag")
		}
		if path := flagValue(args, "--config"); path != "" {
			kubeletConfig = path
		}
	}

	driver, err := kubeletConfigDriver(opts.onHost(kubeletConfig))
	if err != nil {
		return CgroupDriver{}, err
	}
	if driver != "" {
		return checkedDriver(driver, "the kubelet config "+kubeletConfig)
	}

	if cfg != nil && runcUsesSystemd(cfg) {
		return CgroupDriver{CgroupDriverSystemd, "the SystemdCgroup option of the runc handler in " + cfg.hostPath(cfg.Path)}, nil
	}
	return CgroupDriver{CgroupDriverCgroupfs, "the kubelet's default, as nothing on the node sets another"}, nil
}

// checkedDriver fails unless driver is a kubelet cgroup driver.
func checkedDriver(driver, source string) (CgroupDriver, error) {
	if driver != CgroupDriverSystemd && driver != CgroupDriverCgroupfs {
		return CgroupDriver{}, fmt.Errorf("%s sets the cgroup driver %q: expected %s or %s", source, driver, CgroupDriverSystemd, CgroupDriverCgroupfs)
	}
	return CgroupDriver{driver, source}, nil
}

// kubeletConfigDriver returns the cgroupDriver of a kubelet config file, or "" when the
// file or the key is missing.
func kubeletConfigDriver(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the kubelet config %s: %w", path, err)
	}

	var config struct {
		CgroupDriver string `json:"cgroupDriver"`
	}
	if err := yaml.Unmarshal(data, &config); err != nil {
		return "", fmt.Errorf("parse the kubelet config %s: %w", path, err)
	}
	return config.CgroupDriver, nil
}

// runcUsesSystemd reports whether the root config gives the runc handler
// SystemdCgroup = true.
func runcUsesSystemd(cfg *ContainerdConfig) bool {
	pluginID, err := RuntimePluginID(cfg.Version)
	if err != nil {
		return false
	}
	data, err := os.ReadFile(cfg.Path)
	if err != nil {
		return false
	}

	var doc struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]struct {
					Options struct {
						SystemdCgroup bool `toml:"SystemdCgroup"`
					} `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if toml.Unmarshal(data, &doc) != nil {
		return false
	}
	return doc.Plugins[pluginID].Containerd.Runtimes["runc"].Options.SystemdCgroup
}
