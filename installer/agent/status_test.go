package agent

import (
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
)

func TestClassifyInstallErrors(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		condition string
		reason    string
	}{
		{"unknown version", fmt.Errorf("config: %w", installer.ErrUnsupportedVersion),
			reaperv1alpha1.ConditionContainerdConfigured, reaperv1alpha1.ReasonUnsupportedConfigVersion},
		{"invalid TOML", fmt.Errorf("config: %w", installer.ErrInvalidConfig),
			reaperv1alpha1.ConditionContainerdConfigured, reaperv1alpha1.ReasonInvalidConfig},
		{"hand-written handler", fmt.Errorf("config: %w", installer.ErrForeignHandler),
			reaperv1alpha1.ConditionContainerdConfigured, reaperv1alpha1.ReasonInvalidConfig},
		{"no drop-in folder", fmt.Errorf("config: %w", installer.ErrNoDropInDir),
			reaperv1alpha1.ConditionContainerdConfigured, reaperv1alpha1.ReasonInvalidConfig},
		{"invalid flags", fmt.Errorf("%w: bad --host-root", errHostConfig),
			reaperv1alpha1.ConditionContainerdConfigured, reaperv1alpha1.ReasonInvalidConfig},
		{"rolled back", fmt.Errorf("restart: %w", installer.ErrRolledBack),
			reaperv1alpha1.ConditionContainerdConfigured, reaperv1alpha1.ReasonRolledBack},
		{"restart unusable", fmt.Errorf("%w: no pid file", errRestart),
			reaperv1alpha1.ConditionContainerdConfigured, reaperv1alpha1.ReasonRestartFailed},
		{"copy failed", errors.New("install reaper-runtime: disk full"),
			reaperv1alpha1.ConditionBinariesInstalled, reaperv1alpha1.ReasonInstallFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := classify(c.err)
			if got.condition != c.condition {
				t.Errorf("condition is %s, want %s", got.condition, c.condition)
			}
			if got.reason != c.reason {
				t.Errorf("reason is %s, want %s", got.reason, c.reason)
			}
			if got.message != c.err.Error() {
				t.Errorf("message is %q, want the error %q", got.message, c.err.Error())
			}
		})
	}
}

func TestConditionOfFailure(t *testing.T) {
	f := &failure{condition: reaperv1alpha1.ConditionContainerdConfigured, reason: reaperv1alpha1.ReasonInvalidConfig, message: "line 2"}

	failed := conditionOf(reaperv1alpha1.ConditionContainerdConfigured, finding{ok: true, message: "fine"}, f)
	if failed.Status != metav1.ConditionFalse || failed.Reason != reaperv1alpha1.ReasonInvalidConfig || failed.Message != "line 2" {
		t.Errorf("the failed condition is %s %s %q, want False InvalidConfig \"line 2\"", failed.Status, failed.Reason, failed.Message)
	}

	waiting := conditionOf(reaperv1alpha1.ConditionHandlerRegistered, finding{reason: reaperv1alpha1.ReasonHandlerMissing, message: "not served"}, f)
	if waiting.Status != metav1.ConditionFalse || waiting.Reason != reaperv1alpha1.ReasonWaiting {
		t.Errorf("an unmet condition beside the failure is %s %s, want False Waiting", waiting.Status, waiting.Reason)
	}
	if want := "waits for ContainerdConfigured, where the install failed: not served"; waiting.Message != want {
		t.Errorf("its message is %q, want %q", waiting.Message, want)
	}

	met := conditionOf(reaperv1alpha1.ConditionBinariesInstalled, finding{ok: true, message: "installed"}, f)
	if met.Status != metav1.ConditionTrue || met.Reason != reaperv1alpha1.ReasonSucceeded {
		t.Errorf("a met condition beside the failure is %s %s, want True Succeeded", met.Status, met.Reason)
	}
}

func TestConditionOfFinding(t *testing.T) {
	unmet := conditionOf(reaperv1alpha1.ConditionContainerdConfigured, finding{reason: reaperv1alpha1.ReasonDrifted, message: "the drop-in is gone"}, nil)
	if unmet.Status != metav1.ConditionFalse || unmet.Reason != reaperv1alpha1.ReasonDrifted || unmet.Message != "the drop-in is gone" {
		t.Errorf("an unmet condition is %s %s %q, want False Drifted with the finding's message", unmet.Status, unmet.Reason, unmet.Message)
	}
}

func TestSameStatusIgnoresOrder(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC))
	a := reaperv1alpha1.ReaperNodeStatus{Phase: reaperv1alpha1.PhaseReady, Conditions: []metav1.Condition{
		{Type: "A", Status: metav1.ConditionTrue, LastTransitionTime: at},
		{Type: "B", Status: metav1.ConditionFalse, LastTransitionTime: at},
	}}
	b := *a.DeepCopy()
	b.Conditions[0], b.Conditions[1] = b.Conditions[1], b.Conditions[0]
	b.Conditions[0].LastTransitionTime = metav1.NewTime(at.Truncate(time.Second).Local())

	if !sameStatus(a, b) {
		t.Error("statuses that differ only in condition order and sub-second time are not the same")
	}
	b.Conditions[0].Message = "changed"
	if sameStatus(a, b) {
		t.Error("statuses with different condition messages are the same")
	}
}

func TestFlavorOfDistro(t *testing.T) {
	for distro, want := range map[string]reaperv1alpha1.ContainerdFlavor{
		"containerd": reaperv1alpha1.FlavorPlain,
		"k3s":        reaperv1alpha1.FlavorK3s,
		"rke2":       reaperv1alpha1.FlavorRKE2,
		"k0s":        reaperv1alpha1.FlavorK0s,
		"microk8s":   reaperv1alpha1.FlavorMicroK8s,
	} {
		if got := flavorOf(distro); got != want {
			t.Errorf("flavorOf(%q) = %q, want %q", distro, got, want)
		}
	}
	for _, d := range installer.Distros {
		if flavorOf(d.Name) == "" {
			t.Errorf("the distribution %s has no flavor", d.Name)
		}
	}
}

func TestHostPathBelowRoot(t *testing.T) {
	cases := []struct{ root, path, want string }{
		{"/", "/etc/containerd/conf.d/reaper.toml", "/etc/containerd/conf.d/reaper.toml"},
		{"/host", "/host/etc/containerd/conf.d/reaper.toml", "/etc/containerd/conf.d/reaper.toml"},
		{"/host/", "/host/etc/k0s/containerd.d/reaper.toml", "/etc/k0s/containerd.d/reaper.toml"},
	}
	for _, c := range cases {
		host := &installer.Host{Config: installer.HostConfig{HostRoot: c.root}}
		if got := hostPath(host, c.path); got != c.want {
			t.Errorf("hostPath(%q, %q) = %q, want %q", c.root, c.path, got, c.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	valid := Options{NodeName: "node-1", Handler: "reaper", ResyncPeriod: time.Minute}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, change := range map[string]func(*Options){
		"no node":              func(o *Options) { o.NodeName = "" },
		"no handler":           func(o *Options) { o.Handler = "" },
		"zero resync":          func(o *Options) { o.ResyncPeriod = 0 },
		"negative wait":        func(o *Options) { o.UninstallWait = -time.Second },
		"unknown root":         func(o *Options) { o.ProtectedHandler, o.ProtectedRoot = "reaper-protected", "tmpfs" },
		"root without handler": func(o *Options) { o.ProtectedRoot = "read-only" },
	} {
		o := valid
		change(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, o)
		}
	}
}
