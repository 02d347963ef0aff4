package installer

import (
	"path/filepath"
	"testing"
	"time"
)

func TestLockSerialisesInstallers(t *testing.T) {
	opts := Options{HostRoot: t.TempDir()}
	unlock, err := opts.Lock(DefaultLockFile, discardLogger())
	if err != nil {
		t.Fatal(err)
	}

	acquired := make(chan func())
	go func() {
		second, err := opts.Lock(DefaultLockFile, discardLogger())
		if err != nil {
			t.Error(err)
		}
		acquired <- second
	}()

	select {
	case <-acquired:
		t.Fatal("a second installer took the lock while the first held it")
	case <-time.After(200 * time.Millisecond):
	}

	unlock()
	select {
	case second := <-acquired:
		second()
	case <-time.After(5 * time.Second):
		t.Fatalf("the second installer did not get the lock %s after the first released it", filepath.Join(opts.HostRoot, DefaultLockFile))
	}
}
