package installer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// RestartMethod names the mechanism that makes containerd load a changed config.
type RestartMethod string

const (
	// RestartAuto uses systemd when its private socket is there, else the signal method
	// when a pid file is given, and fails otherwise.
	RestartAuto RestartMethod = "auto"
	// RestartSystemd restarts containerd's systemd unit over D-Bus.
	RestartSystemd RestartMethod = "systemd"
	// RestartSignal stops containerd with SIGTERM, for a supervisor that starts it again,
	// on hosts without systemd.
	RestartSignal RestartMethod = "signal"
	// RestartNone leaves the restart to the operator.
	RestartNone RestartMethod = "none"
)

// ParseRestartMethod returns the restart method named s.
func ParseRestartMethod(s string) (RestartMethod, error) {
	switch m := RestartMethod(s); m {
	case RestartAuto, RestartSystemd, RestartSignal, RestartNone:
		return m, nil
	}
	return "", fmt.Errorf("invalid restart method %q; valid methods are auto, systemd, signal and none", s)
}

// DefaultSystemdUnit is the unit of a plain containerd install.
const DefaultSystemdUnit = "containerd.service"

// systemdSocket is systemd's private D-Bus socket, which needs no system bus.
const systemdSocket = "/run/systemd/private"

// NewRestarter returns the restarter of a method; nil for RestartNone. For RestartAuto it
// picks systemd when its socket is below hostRoot, else the signal method when pidFile
// is set.
func NewRestarter(method RestartMethod, hostRoot, unit, pidFile string) (Restarter, error) {
	if method == RestartAuto {
		method = autoMethod(hostRoot, pidFile)
	}

	switch method {
	case RestartNone:
		return nil, nil
	case RestartSignal:
		if pidFile == "" {
			return nil, errors.New("--restart signal needs --containerd-pid-file, the pid file of the supervised containerd")
		}
		return SignalRestarter{PIDFile: Options{HostRoot: hostRoot}.onHost(pidFile)}, nil
	case RestartAuto:
		socket := Options{HostRoot: hostRoot}.onHost(systemdSocket)
		return nil, fmt.Errorf("--restart auto found no systemd at %s and no --containerd-pid-file; "+
			"use --restart signal with --containerd-pid-file for a supervised containerd, or --restart none and restart containerd yourself", socket)
	}
	return SystemdRestarter{Unit: unit, HostRoot: hostRoot}, nil
}

// autoMethod returns the method that auto selects on this host: systemd when its
// socket is there, signal when a pid file is given, or auto itself when neither is.
func autoMethod(hostRoot, pidFile string) RestartMethod {
	if _, err := os.Stat(Options{HostRoot: hostRoot}.onHost(systemdSocket)); err == nil {
		return RestartSystemd
	}
	if pidFile != "" {
		return RestartSignal
	}
	return RestartAuto
}

// Restarter makes containerd load its config again.
type Restarter interface {
	// Check fails when a restart cannot run, before anything is changed.
	Check(ctx context.Context) error
	Restart(ctx context.Context) error
}

// SignalRestarter sends SIGTERM to the containerd whose pid PIDFile holds and waits
// until it has exited; its supervisor starts it again. A pid that runs no process means
// containerd is down already.
type SignalRestarter struct {
	PIDFile string
}

// Check fails unless the pid file holds a pid.
func (r SignalRestarter) Check(context.Context) error {
	_, err := r.pid()
	return err
}

func (r SignalRestarter) pid() (int, error) {
	data, err := os.ReadFile(r.PIDFile)
	if err != nil {
		return 0, fmt.Errorf("read containerd's pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("invalid pid %q in %s", strings.TrimSpace(string(data)), r.PIDFile)
	}
	return pid, nil
}

// Restart stops containerd and returns once it has exited.
func (r SignalRestarter) Restart(ctx context.Context) error {
	pid, err := r.pid()
	if err != nil {
		return err
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return nil
	} else if err != nil {
		return fmt.Errorf("stop containerd (pid %d): %w", pid, err)
	}

	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd (pid %d) did not exit after SIGTERM: %w", pid, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SystemdRestarter restarts Unit through systemd's private D-Bus socket below HostRoot.
type SystemdRestarter struct {
	Unit     string
	HostRoot string
}

// Check fails unless systemd accepts a connection on its private socket.
func (r SystemdRestarter) Check(context.Context) error {
	conn, err := r.connect()
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

func (r SystemdRestarter) connect() (*sdbus.Conn, error) {
	socket := Options{HostRoot: r.HostRoot}.onHost(systemdSocket)
	conn, err := sdbus.NewConnection(func() (*dbus.Conn, error) { return dialSystemd(socket) })
	if err != nil {
		return nil, fmt.Errorf("connect to systemd at %s: %w", socket, err)
	}
	return conn, nil
}

// Restart restarts the unit and waits for systemd's job to finish.
func (r SystemdRestarter) Restart(ctx context.Context) error {
	conn, err := r.connect()
	if err != nil {
		return err
	}
	defer conn.Close()

	done := make(chan string, 1)
	if _, err := conn.RestartUnitContext(ctx, r.Unit, "replace", done); err != nil {
		return fmt.Errorf("restart the systemd unit %s: %w", r.Unit, err)
	}
	select {
	case result := <-done:
		if result != "done" {
			return fmt.Errorf("systemd's restart of %s ended with %q; see journalctl -u %s", r.Unit, result, r.Unit)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("restart the systemd unit %s: %w", r.Unit, ctx.Err())
	}
}

func dialSystemd(socket string) (*dbus.Conn, error) {
	conn, err := dbus.Dial("unix:path=" + socket)
	if err != nil {
		return nil, err
	}
	// systemd's private socket takes EXTERNAL authentication and no Hello call.
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
