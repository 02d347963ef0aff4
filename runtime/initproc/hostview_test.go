package initproc

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestChildMountPoints(t *testing.T) {
	mountinfo := filepath.Join(t.TempDir(), "mountinfo")
	table := `20 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
21 20 0:21 / /proc rw,nosuid - proc proc rw
22 20 0:22 / /sys rw - sysfs sysfs rw
23 22 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw
24 20 0:25 / /mnt/with\040space rw - tmpfs tmpfs rw
25 20 0:26 / /var/lib/kubelet/pods/u/volumes/v rw - tmpfs tmpfs rw
`
	if err := os.WriteFile(mountinfo, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := childMountPoints(mountinfo)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/proc", "/sys", "/mnt/with space", "/var/lib/kubelet/pods/u/volumes/v"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("childMountPoints() = %q, want %q", got, want)
	}
}

func TestEscapeOverlay(t *testing.T) {
	if got, want := escapeOverlay(`/a,b:c\d`), `/a\,b\:c\\d`; got != want {
		t.Errorf("escapeOverlay() = %q, want %q", got, want)
	}
}
