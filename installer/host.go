package installer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DistroAuto selects the distribution from the running containerd's --config, else from
// the config files on the host.
const DistroAuto = "auto"

// CgroupDriverAuto finds the kubelet's cgroup driver with DetectCgroupDriver.
const CgroupDriverAuto = "auto"

// DefaultRestartTimeout bounds the wait for containerd to serve the handlers after a
// restart.
const DefaultRestartTimeout = time.Minute

// HostConfig locates containerd and the installer's files on a host and sets how a
// changed config reaches containerd. The command line and the node agent fill it from
// their flags; an empty field takes the distribution's value or the default.
type HostConfig struct {
	// HostRoot is the folder the host's / is mounted at, such as /host in a pod.
	HostRoot string
	// Distro is DistroAuto or the name of one of Distros.
	Distro string
	// ContainerdConfig and ContainerdSocket are host paths; empty takes the distribution's.
	ContainerdConfig string
	ContainerdSocket string
	// InstallDir is the host folder of the binaries, and LinkDir the folder on
	// containerd's PATH that gets a link to the shim, or empty for none.
	InstallDir string
	LinkDir    string
	// CgroupDriver is CgroupDriverAuto, CgroupDriverSystemd or CgroupDriverCgroupfs.
	CgroupDriver string
	// LockFile is the host file whose flock serialises installers on the node.
	LockFile string
	// RestartMethod is a RestartMethod, or empty for a host that is only read.
	RestartMethod string
	// SystemdUnit is containerd's unit; empty takes the first installed unit of the
	// distribution.
	SystemdUnit string
	// PIDFile is the host file with containerd's pid, for RestartSignal.
	PIDFile string
	// LogFile is containerd's log file on the host, quoted when containerd does not
	// come back after a restart, or empty.
	LogFile string
	// RestartTimeout bounds the wait for containerd after a restart;
	// DefaultRestartTimeout when zero.
	RestartTimeout time.Duration
	// ProcDir is the host's /proc, where the running containerd and kubelet show their
	// command lines; "/proc" when empty.
	ProcDir string
}

// Host is a HostConfig whose distribution is resolved and whose empty paths are filled
// in from it.
type Host struct {
	// Config is the resolved configuration.
	Config HostConfig
	// Distro is the distribution that Config.Distro names or that was detected.
	Distro Distro
	// CgroupDriver is the kubelet's cgroup driver and its source, set by Detect.
	CgroupDriver CgroupDriver
	// ContainerdErr is the error of Detect's CRI request, or nil when containerd
	// responded.
	ContainerdErr error
}

// ResolveHost checks the configuration, finds the distribution and fills in the paths
// and the unit that it gives where the configuration leaves them empty.
func ResolveHost(config HostConfig) (*Host, error) {
	if err := config.check(); err != nil {
		return nil, err
	}
	if config.ProcDir == "" {
		config.ProcDir = "/proc"
	}
	if config.RestartTimeout == 0 {
		config.RestartTimeout = DefaultRestartTimeout
	}

	h := &Host{Config: config}
	if err := h.resolveDistro(); err != nil {
		return nil, err
	}
	return h, nil
}

// check rejects a configuration with a relative or missing host root, a relative link
// folder or an unknown restart method.
func (c HostConfig) check() error {
	if _, err := ParseRestartMethod(c.RestartMethod); c.RestartMethod != "" && err != nil {
		return fmt.Errorf("--restart: %w", err)
	}
	if !filepath.IsAbs(c.HostRoot) {
		return fmt.Errorf("invalid --host-root %q: use an absolute path", c.HostRoot)
	}
	if info, err := os.Stat(c.HostRoot); err != nil || !info.IsDir() {
		return fmt.Errorf("invalid --host-root %q: not a folder; mount the host's / there", c.HostRoot)
	}
	if c.LinkDir != "" && !filepath.IsAbs(c.LinkDir) {
		return fmt.Errorf("invalid --link-dir %q: use an absolute path, or empty for no link", c.LinkDir)
	}
	return nil
}

// resolveDistro finds the distribution and fills in the paths and unit it gives, where
// the configuration leaves them empty.
func (h *Host) resolveDistro() error {
	c := &h.Config
	if c.Distro == DistroAuto || c.Distro == "" {
		h.Distro = DetectDistro(c.HostRoot)
		// The running containerd names its config; the installer pod shares the host's
		// PID namespace, so /proc shows it.
		running := RunningConfig(c.ProcDir)
		if _, err := os.Stat(h.onHost(running)); c.ContainerdConfig == "" && running != "" && err == nil {
			h.Distro = DistroForConfig(running)
		}
	} else {
		d, err := DistroByName(c.Distro)
		if err != nil {
			return fmt.Errorf("--distro: %w", err)
		}
		h.Distro = d
	}

	if c.ContainerdConfig == "" {
		c.ContainerdConfig = h.Distro.Config
	}
	if c.ContainerdSocket == "" {
		c.ContainerdSocket = h.Distro.Socket
		// A socket that the root config sets wins over the distribution's default, unless
		// it contains a template variable, such as microk8s's ${SNAP_COMMON}.
		cfg, err := ReadContainerdConfig(h.onHost(c.ContainerdConfig))
		if err == nil && cfg.Address != "" && !strings.Contains(cfg.Address, "${") {
			c.ContainerdSocket = cfg.Address
		}
	}
	if c.SystemdUnit == "" {
		c.SystemdUnit = installedUnit(c.HostRoot, h.Distro.Units)
	}
	return nil
}

// installedUnit returns the first of units with a unit file on the host, or the first.
func installedUnit(hostRoot string, units []string) string {
	host := Options{HostRoot: hostRoot}
	for _, unit := range units {
		for _, dir := range []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"} {
			if _, err := os.Stat(host.onHost(filepath.Join(dir, unit))); err == nil {
				return unit
			}
		}
	}
	return units[0]
}

// onHost returns where a host path is below the host root.
func (h *Host) onHost(path string) string {
	return Options{HostRoot: h.Config.HostRoot}.onHost(path)
}

// Options returns the installer options of the host's paths: the root config, the
// install and link folders, and the distribution's templates and drop-in folder when the
// root config is the distribution's.
func (h *Host) Options() Options {
	c := h.Config
	opts := Options{HostRoot: c.HostRoot, ContainerdConfig: c.ContainerdConfig, InstallDir: c.InstallDir, LinkDir: c.LinkDir}
	if c.ContainerdConfig == h.Distro.Config {
		opts.Templates = h.Distro.Templates
		opts.DropInDir = h.Distro.DropInDir
	}
	return opts
}

// Detect requests the running containerd's version and handlers into opts.Containerd,
// and finds the kubelet's cgroup driver into opts.CgroupDriver and h.CgroupDriver. A
// containerd that does not respond is not an error: it may be stopped, and the install
// then assumes containerd 2.x. h.ContainerdErr keeps the error of that request.
func (h *Host) Detect(ctx context.Context, opts *Options) error {
	c := h.Config
	opts.Containerd, h.ContainerdErr = QueryContainerd(ctx, h.onHost(c.ContainerdSocket))

	switch c.CgroupDriver {
	case CgroupDriverSystemd, CgroupDriverCgroupfs:
		h.CgroupDriver = CgroupDriver{Driver: c.CgroupDriver, Source: "the --cgroup-driver flag"}
	case CgroupDriverAuto, "":
		criDriver := ""
		if opts.Containerd != nil {
			criDriver = opts.Containerd.CgroupDriver
		}
		// A config that is missing or invalid only leaves runc's option out of the search.
		cfg, _ := ReadContainerdConfig(h.onHost(c.ContainerdConfig))
		if cfg != nil {
			cfg.HostRoot = c.HostRoot
		}
		driver, err := DetectCgroupDriver(*opts, c.ProcDir, criDriver, cfg)
		if err != nil {
			return fmt.Errorf("find the kubelet's cgroup driver: %w; set it with --cgroup-driver", err)
		}
		h.CgroupDriver = driver
	default:
		return fmt.Errorf("invalid --cgroup-driver %q: use auto, %s or %s", c.CgroupDriver, CgroupDriverSystemd, CgroupDriverCgroupfs)
	}
	opts.CgroupDriver = h.CgroupDriver.Driver
	return nil
}

// Lock takes the installer lock of the node. The returned function releases it.
func (h *Host) Lock(opts Options, log *slog.Logger) (func(), error) {
	lockFile := h.Config.LockFile
	if lockFile == "" {
		lockFile = DefaultLockFile
	}
	return opts.Lock(lockFile, log)
}

// Restart returns how a changed config reaches containerd: nil for RestartNone.
func (h *Host) Restart() (*Restart, error) {
	c := h.Config
	method, err := ParseRestartMethod(c.RestartMethod)
	if err != nil {
		return nil, err
	}
	restarter, err := NewRestarter(method, c.HostRoot, c.SystemdUnit, c.PIDFile)
	if err != nil || restarter == nil {
		return nil, err
	}

	socket := h.onHost(c.ContainerdSocket)
	r := &Restart{
		Restarter: restarter,
		Served:    func(ctx context.Context) ([]string, error) { return QueryHandlers(ctx, socket) },
		Timeout:   c.RestartTimeout,
	}
	if c.LogFile != "" {
		r.LogFile = h.onHost(c.LogFile)
	}
	return r, nil
}

// ReadySandboxes returns the pods of the runtime handlers that run on the host, from
// containerd's CRI.
func (h *Host) ReadySandboxes(ctx context.Context, handlers []string) ([]PodSandbox, error) {
	return ReadySandboxes(ctx, h.onHost(h.Config.ContainerdSocket), handlers)
}

// Plan is the change that an install or an uninstall makes on the host.
type Plan interface {
	// Describe prints the change for a dry run.
	Describe(w io.Writer) error
	// Apply makes the change and returns whether a file changed.
	Apply(log *slog.Logger) (bool, error)
	// ApplyAndRestart makes the change, restarts containerd when needed and waits for it.
	ApplyAndRestart(ctx context.Context, log *slog.Logger, r Restart) (bool, error)
}

var (
	_ Plan = (*InstallPlan)(nil)
	_ Plan = (*UninstallPlan)(nil)
)

// Apply applies the plan and makes containerd load the change by the host's restart
// method. It returns whether anything changed. With RestartNone it leaves the restart to
// the operator and logs whether one is needed.
func (h *Host) Apply(ctx context.Context, log *slog.Logger, p Plan) (bool, error) {
	restart, err := h.Restart()
	if err != nil {
		return false, err
	}
	if restart != nil {
		return p.ApplyAndRestart(ctx, log, *restart)
	}

	changed, err := p.Apply(log)
	if err != nil {
		return changed, err
	}
	if changed {
		log.Info("containerd was not restarted (--restart none); restart it to load the change")
	} else {
		log.Info("nothing changed")
	}
	return changed, nil
}

// AddCgroupDriverDrift adds to the status's drift a cgroup driver of the handlers that
// differs from the kubelet's, once Detect has found the kubelet's.
func (h *Host) AddCgroupDriverDrift(status *Status) {
	driver := h.CgroupDriver
	if driver.Driver != "" && status.HandlerCgroupDriver != "" && status.HandlerCgroupDriver != driver.Driver {
		status.Drift = append(status.Drift, fmt.Sprintf("the handlers use the %s cgroup driver, and the kubelet %s (from %s)",
			status.HandlerCgroupDriver, driver.Driver, driver.Source))
	}
}
