package installer

import (
	"reflect"
	"testing"
)

func TestReadStatus(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	host.opts.ProtectedHandlers = []string{DefaultProtectedHandler}

	before, err := ReadStatus(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if before.Installed() || len(before.Handlers) != 0 {
		t.Errorf("status before the install = %+v, want nothing installed", before)
	}

	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}

	after, err := ReadStatus(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Installed() {
		t.Errorf("status after the install = %+v, want installed", after)
	}
	if want := []string{DefaultHandler, DefaultProtectedHandler}; !reflect.DeepEqual(after.Handlers, want) {
		t.Errorf("handlers = %q, want %q", after.Handlers, want)
	}
	if after.DropIn == "" || after.ConfigVersion != 3 {
		t.Errorf("status = %+v, want the drop-in of a version 3 config", after)
	}
}
