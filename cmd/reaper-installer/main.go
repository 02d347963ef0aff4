// Command reaper-installer installs the Reaper runtime on a node: it copies the Reaper binaries
// and registers the runtime handlers with containerd, and reverts both on uninstall.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"reaper.dev/reaper/installer"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:          "reaper-installer",
		Short:        "Install the Reaper runtime on this host and register it with containerd",
		SilenceUsage: true,
	}
	root.AddCommand(newInstallCommand(), newUninstallCommand(), newStatusCommand())
	return root
}

// hostFlags are the flags that install and uninstall share.
type hostFlags struct {
	distro           string
	hostRoot         string
	containerdSocket string
	pidFile          string
	logFile          string
	systemdUnit      string
	restartTimeout   time.Duration
	// resolved is the distribution that --distro names or detects.
	resolved         installer.Distro
	containerdConfig string
	installDir       string
	linkDir          string
	lockFile         string
	restartMethod    string
	dryRun           bool
	// cgroupDriver is the --cgroup-driver flag, and driver what it names or detects.
	cgroupDriver string
	driver       installer.CgroupDriver
	// containerdErr is the error of the CRI request for containerd's version and handlers.
	containerdErr error
}

// registerPaths adds the flags that locate Reaper's files on the host.
func (f *hostFlags) registerPaths(flags *pflag.FlagSet) {
	flags.StringVar(&f.hostRoot, "host-root", "/",
		"where the host's / is mounted, such as /host in a pod; the other paths are paths on the host")
	flags.StringVar(&f.distro, "distro", "auto",
		"how containerd comes on this node: auto (from the running containerd's --config, else from the config files), containerd, k3s, rke2, k0s or microk8s")
	flags.StringVar(&f.containerdConfig, "containerd-config", "",
		"path of containerd's root config file (default: the distribution's, "+installer.DefaultContainerdConfig+" for plain containerd)")
	flags.StringVar(&f.containerdSocket, "containerd-socket", "",
		"containerd's socket, where the CRI reports the runtime handlers it serves (default: the distribution's)")
	flags.StringVar(&f.installDir, "install-dir", installer.DefaultInstallDir,
		"absolute directory the Reaper binaries are installed in")
	flags.StringVar(&f.linkDir, "link-dir", installer.DefaultLinkDir,
		"folder on containerd's PATH that gets a link to the shim, so containerd finds it by name after a restart; empty for none")
	flags.StringVar(&f.cgroupDriver, "cgroup-driver", "auto",
		"the kubelet's cgroup driver, which the handlers must use: auto (from containerd's CRI, the kubelet's flags or config, or runc's options), systemd or cgroupfs")
}

// register adds the flags of the commands that change the host: the paths, and how to
// change them.
func (f *hostFlags) register(flags *pflag.FlagSet) {
	f.registerPaths(flags)
	flags.StringVar(&f.lockFile, "lock-file", installer.DefaultLockFile,
		"host file whose flock keeps two installers on the node from changing it at once")
	flags.StringVar(&f.restartMethod, "restart", string(installer.RestartAuto),
		"how to make containerd load a changed config: auto (systemd if it runs, else signal when --containerd-pid-file is set), systemd (restart --systemd-unit over D-Bus), signal (SIGTERM to the pid in --containerd-pid-file, for a supervisor to start containerd again) or none")
	flags.StringVar(&f.systemdUnit, "systemd-unit", "", "containerd's systemd unit, for --restart systemd or auto (default: the distribution's, such as containerd.service or k3s.service)")
	flags.StringVar(&f.pidFile, "containerd-pid-file", "", "file holding containerd's pid, for --restart signal")
	flags.StringVar(&f.logFile, "containerd-log", "", "containerd's log file, quoted when containerd does not come back after a restart")
	flags.DurationVar(&f.restartTimeout, "restart-timeout", time.Minute, "how long containerd may take to serve the handlers after a restart")
	flags.BoolVar(&f.dryRun, "dry-run", false, "print the planned change, config files as a unified diff, and change nothing")
}

func (f *hostFlags) options() (installer.Options, error) {
	// status registers no --restart flag.
	if _, err := installer.ParseRestartMethod(f.restartMethod); f.restartMethod != "" && err != nil {
		return installer.Options{}, fmt.Errorf("--restart: %w", err)
	}
	if !filepath.IsAbs(f.hostRoot) {
		return installer.Options{}, fmt.Errorf("invalid --host-root %q: use an absolute path", f.hostRoot)
	}
	if info, err := os.Stat(f.hostRoot); err != nil || !info.IsDir() {
		return installer.Options{}, fmt.Errorf("invalid --host-root %q: not a folder; mount the host's / there", f.hostRoot)
	}
	if f.linkDir != "" && !filepath.IsAbs(f.linkDir) {
		return installer.Options{}, fmt.Errorf("invalid --link-dir %q: use an absolute path, or empty for no link", f.linkDir)
	}
	if err := f.resolveDistro(); err != nil {
		return installer.Options{}, err
	}

	opts := installer.Options{HostRoot: f.hostRoot, ContainerdConfig: f.containerdConfig, InstallDir: f.installDir, LinkDir: f.linkDir}
	if f.containerdConfig == f.resolved.Config {
		opts.Templates = f.resolved.Templates
		opts.DropInDir = f.resolved.DropInDir
	}
	return opts, nil
}

// resolveDistro finds the distribution and fills in the paths and unit it gives, where
// no flag sets them.
func (f *hostFlags) resolveDistro() error {
	if f.distro == "auto" {
		f.resolved = installer.DetectDistro(f.hostRoot)
		// The running containerd names its config; the installer pod shares the host's
		// PID namespace, so /proc shows it.
		running := installer.RunningConfig("/proc")
		if _, err := os.Stat(onHost(f.hostRoot, running)); f.containerdConfig == "" && running != "" && err == nil {
			f.resolved = installer.DistroForConfig(running)
		}
	} else {
		d, err := installer.DistroByName(f.distro)
		if err != nil {
			return fmt.Errorf("--distro: %w", err)
		}
		f.resolved = d
	}

	if f.containerdConfig == "" {
		f.containerdConfig = f.resolved.Config
	}
	if f.containerdSocket == "" {
		f.containerdSocket = f.resolved.Socket
		// A socket that the root config sets wins over the distribution's default, unless
		// it contains a template variable, such as microk8s's ${SNAP_COMMON}.
		cfg, err := installer.ReadContainerdConfig(onHost(f.hostRoot, f.containerdConfig))
		if err == nil && cfg.Address != "" && !strings.Contains(cfg.Address, "${") {
			f.containerdSocket = cfg.Address
		}
	}
	if f.systemdUnit == "" {
		f.systemdUnit = installedUnit(f.hostRoot, f.resolved.Units)
	}
	return nil
}

// detectNode requests the running containerd's version and handlers, and finds the
// kubelet's cgroup driver unless --cgroup-driver names it. A containerd that does not
// respond is not an error: it may be stopped, and the install then assumes containerd 2.x.
func (f *hostFlags) detectNode(ctx context.Context, opts *installer.Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	opts.Containerd, f.containerdErr = installer.QueryContainerd(ctx, onHost(f.hostRoot, f.containerdSocket))

	switch f.cgroupDriver {
	case installer.CgroupDriverSystemd, installer.CgroupDriverCgroupfs:
		f.driver = installer.CgroupDriver{Driver: f.cgroupDriver, Source: "the --cgroup-driver flag"}
	case "auto":
		criDriver := ""
		if opts.Containerd != nil {
			criDriver = opts.Containerd.CgroupDriver
		}
		// A config that is missing or invalid only leaves runc's option out of the search.
		cfg, _ := installer.ReadContainerdConfig(onHost(f.hostRoot, f.containerdConfig))
		if cfg != nil {
			cfg.HostRoot = f.hostRoot
		}
		driver, err := installer.DetectCgroupDriver(*opts, "/proc", criDriver, cfg)
		if err != nil {
			return fmt.Errorf("find the kubelet's cgroup driver: %w; set it with --cgroup-driver", err)
		}
		f.driver = driver
	default:
		return fmt.Errorf("invalid --cgroup-driver %q: use auto, %s or %s", f.cgroupDriver, installer.CgroupDriverSystemd, installer.CgroupDriverCgroupfs)
	}
	opts.CgroupDriver = f.driver.Driver
	return nil
}

// installedUnit returns the first of units with a unit file on the host, or the first.
func installedUnit(hostRoot string, units []string) string {
	for _, unit := range units {
		for _, dir := range []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"} {
			if _, err := os.Stat(onHost(hostRoot, filepath.Join(dir, unit))); err == nil {
				return unit
			}
		}
	}
	return units[0]
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// executableDir returns the directory of the running binary, the default source of the binaries
// to install.
func executableDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Dir(exe)
}

// reportRestart logs whether the operator must restart containerd, after --restart none.
func reportRestart(log *slog.Logger, changed bool) {
	if changed {
		log.Info("containerd was not restarted (--restart none); restart it to load the change")
		return
	}
	log.Info("nothing changed")
}

// lock takes the installer lock of the node, unless this is a dry run, which changes
// nothing. The returned function releases it.
func (f *hostFlags) lock(opts installer.Options, log *slog.Logger) (func(), error) {
	if f.dryRun {
		return func() {}, nil
	}
	return opts.Lock(f.lockFile, log)
}

// restart returns how a changed config reaches containerd: nil for --restart none.
func (f *hostFlags) restart(opts installer.Options) (*installer.Restart, error) {
	method, err := installer.ParseRestartMethod(f.restartMethod)
	if err != nil {
		return nil, err
	}
	restarter, err := installer.NewRestarter(method, opts.HostRoot, f.systemdUnit, f.pidFile)
	if err != nil || restarter == nil {
		return nil, err
	}

	socket := onHost(f.hostRoot, f.containerdSocket)
	r := &installer.Restart{
		Restarter: restarter,
		Served:    func(ctx context.Context) ([]string, error) { return installer.QueryHandlers(ctx, socket) },
		Timeout:   f.restartTimeout,
	}
	if f.logFile != "" {
		r.LogFile = onHost(f.hostRoot, f.logFile)
	}
	return r, nil
}

// plan is the change that install or uninstall makes on the host.
type plan interface {
	Describe(w io.Writer) error
	Apply(log *slog.Logger) (bool, error)
	ApplyAndRestart(ctx context.Context, log *slog.Logger, r installer.Restart) (bool, error)
}

// runPlan takes the node's lock, makes the plan, and prints it for a dry run or applies
// it, restarting containerd by the --restart method.
func (f *hostFlags) runPlan(cmd *cobra.Command, opts installer.Options, makePlan func(installer.Options) (plan, error)) error {
	log := newLogger()
	unlock, err := f.lock(opts, log)
	if err != nil {
		return err
	}
	defer unlock()

	p, err := makePlan(opts)
	if err != nil {
		return err
	}
	if f.dryRun {
		return p.Describe(cmd.OutOrStdout())
	}

	restart, err := f.restart(opts)
	if err != nil {
		return err
	}
	if restart != nil {
		_, err := p.ApplyAndRestart(cmd.Context(), log, *restart)
		return err
	}

	changed, err := p.Apply(log)
	if err == nil {
		reportRestart(log, changed)
	}
	return err
}
