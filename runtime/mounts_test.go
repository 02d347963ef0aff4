package runtime

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"reaper.dev/reaper/runtime/initproc"
)

func TestBindMounts(t *testing.T) {
	spec := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"},
		{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}},
		{Destination: "/proc/sys/x", Type: "bind", Source: "/tmp/x", Options: []string{"rbind"}},
		{Destination: "/etc/config", Type: "bind", Source: "/var/lib/kubelet/pods/u/volumes/c", Options: []string{"rbind", "rprivate", "ro"}},
		{Destination: "/data/", Source: "/srv/data", Options: []string{"rbind", "rslave", "rro", "nosuid", "nodev"}},
		{Destination: "/shared", Type: "bind", Source: "/mnt/shared", Options: []string{"bind", "rshared", "noexec", "rw"}},
	}}

	got, err := BindMounts(spec)
	if err != nil {
		t.Fatal(err)
	}

	want := []initproc.Mount{
		{Source: "/var/lib/kubelet/pods/u/volumes/c", Destination: "/etc/config", Recursive: true, ReadOnly: true, Propagation: "private"},
		{Source: "/srv/data", Destination: "/data", Recursive: true, ReadOnly: true, RecursiveReadOnly: true, Propagation: "slave", Attributes: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV},
		{Source: "/mnt/shared", Destination: "/shared", Propagation: "shared", Attributes: unix.MOUNT_ATTR_NOEXEC},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BindMounts() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestBindMountsRejectsRelativePaths(t *testing.T) {
	for _, m := range []specs.Mount{
		{Destination: "data", Type: "bind", Source: "/srv"},
		{Destination: "/data", Type: "bind", Source: "srv"},
	} {
		_, err := BindMounts(&specs.Spec{Mounts: []specs.Mount{m}})
		if err == nil || !strings.Contains(err.Error(), "use an absolute path") {
			t.Errorf("BindMounts(%+v) error = %v, want one asking for an absolute path", m, err)
		}
	}
}

func TestNetworkNamespace(t *testing.T) {
	tests := []struct {
		namespaces []specs.LinuxNamespace
		want       string
	}{
		{want: ""},
		{namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}, want: ""},
		{namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}}, want: initproc.NewNamespace},
		{namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-1"}}, want: "/var/run/netns/cni-1"},
	}

	for _, tt := range tests {
		spec := &specs.Spec{Linux: &specs.Linux{Namespaces: tt.namespaces}}
		if got := NetworkNamespace(spec); got != tt.want {
			t.Errorf("NetworkNamespace(%v) = %q, want %q", tt.namespaces, got, tt.want)
		}
	}
}

func TestNetworkSysctls(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Sysctl: map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "0",
		"kernel.shm_rmid_forced":              "1",
	}}}
	got := NetworkSysctls(spec)
	if want := map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("NetworkSysctls() = %v, want %v", got, want)
	}
}

func TestMountOptionsApplied(t *testing.T) {
	for _, option := range MountOptions {
		if !applyMountOption(&initproc.Mount{}, option) {
			t.Errorf("MountOptions lists %q, which applyMountOption ignores", option)
		}
	}
}
