// Command reaper-installer installs the Reaper runtime on a node: it copies the Reaper binaries
// and registers the runtime handlers with containerd, and reverts both on uninstall.
package main

import (
	"log/slog"
	"os"
	"path/filepath"

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
	root.AddCommand(newInstallCommand(), newUninstallCommand(), newStatusCommand(), newAgentCommand())
	return root
}

// hostFlags are the flags that install, uninstall and status share.
type hostFlags struct {
	config installer.HostConfig
	dryRun bool
	// host is the resolved config, set by options.
	host *installer.Host
}

// registerPaths adds the flags that locate Reaper's files on the host.
func (f *hostFlags) registerPaths(flags *pflag.FlagSet) {
	c := &f.config
	flags.StringVar(&c.HostRoot, "host-root", "/",
		"where the host's / is mounted, such as /host in a pod; the other paths are paths on the host")
	flags.StringVar(&c.Distro, "distro", installer.DistroAuto,
		"how containerd comes on this node: auto (from the running containerd's --config, else from the config files), containerd, k3s, rke2, k0s or microk8s")
	flags.StringVar(&c.ContainerdConfig, "containerd-config", "",
		"path of containerd's root config file (default: the distribution's, "+installer.DefaultContainerdConfig+" for plain containerd)")
	flags.StringVar(&c.ContainerdSocket, "containerd-socket", "",
		"containerd's socket, where the CRI reports the runtime handlers it serves (default: the distribution's)")
	flags.StringVar(&c.InstallDir, "install-dir", installer.DefaultInstallDir,
		"absolute directory the Reaper binaries are installed in")
	flags.StringVar(&c.LinkDir, "link-dir", installer.DefaultLinkDir,
		"folder on containerd's PATH that gets a link to the shim, so containerd finds it by name after a restart; empty for none")
	flags.StringVar(&c.CgroupDriver, "cgroup-driver", installer.CgroupDriverAuto,
		"the kubelet's cgroup driver, which the handlers must use: auto (from containerd's CRI, the kubelet's flags or config, or runc's options), systemd or cgroupfs")
}

// register adds the flags of the commands that change the host: the paths, and how to
// change them.
func (f *hostFlags) register(flags *pflag.FlagSet) {
	f.registerPaths(flags)
	registerChangeFlags(flags, &f.config)
	flags.BoolVar(&f.dryRun, "dry-run", false, "print the planned change, config files as a unified diff, and change nothing")
}

// registerChangeFlags adds the flags that set the lock and the restart of containerd.
func registerChangeFlags(flags *pflag.FlagSet, c *installer.HostConfig) {
	flags.StringVar(&c.LockFile, "lock-file", installer.DefaultLockFile,
		"host file whose flock keeps two installers on the node from changing it at once")
	flags.StringVar(&c.RestartMethod, "restart", string(installer.RestartAuto),
		"how to make containerd load a changed config: auto (systemd if it runs, else signal when --containerd-pid-file is set), systemd (restart --systemd-unit over D-Bus), signal (SIGTERM to the pid in --containerd-pid-file, for a supervisor to start containerd again) or none")
	flags.StringVar(&c.SystemdUnit, "systemd-unit", "", "containerd's systemd unit, for --restart systemd or auto (default: the distribution's, such as containerd.service or k3s.service)")
	flags.StringVar(&c.PIDFile, "containerd-pid-file", "", "file holding containerd's pid, for --restart signal")
	flags.StringVar(&c.LogFile, "containerd-log", "", "containerd's log file, quoted when containerd does not come back after a restart")
	flags.DurationVar(&c.RestartTimeout, "restart-timeout", installer.DefaultRestartTimeout, "how long containerd may take to serve the handlers after a restart")
}

// options resolves the host from the flags and returns the installer options of its
// paths.
func (f *hostFlags) options() (installer.Options, error) {
	host, err := installer.ResolveHost(f.config)
	if err != nil {
		return installer.Options{}, err
	}
	f.host = host
	return host.Options(), nil
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

// runPlan takes the node's lock, makes the plan, and prints it for a dry run or applies
// it, restarting containerd by the --restart method. A dry run, which changes nothing,
// takes no lock.
func (f *hostFlags) runPlan(cmd *cobra.Command, opts installer.Options, makePlan func(installer.Options) (installer.Plan, error)) error {
	log := newLogger()
	if !f.dryRun {
		unlock, err := f.host.Lock(opts, log)
		if err != nil {
			return err
		}
		defer unlock()
	}

	p, err := makePlan(opts)
	if err != nil {
		return err
	}
	if f.dryRun {
		return p.Describe(cmd.OutOrStdout())
	}
	_, err = f.host.Apply(cmd.Context(), log, p)
	return err
}
