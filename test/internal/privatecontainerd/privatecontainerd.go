// Package privatecontainerd runs a real containerd whose paths all lie in one folder, under a
// supervisor loop that starts it again whenever it exits and writes its pid file, as runit or
// s6 would. The test suites use it to exercise the installer's signal restart.
package privatecontainerd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Names of the files that the supervisor loop and containerd use in the folder.
const (
	ConfigFile = "config.toml"
	Socket     = "c.sock"
	PIDFile    = "containerd.pid"
	LogFile    = "containerd.log"
	// StopFile ends the supervisor loop once containerd exits.
	StopFile = "stop"
)

// ConfigTemplate is a containerd config whose paths all lie in one folder, importing its
// conf.d folder. Each %[1]s is the folder, so fmt.Sprintf(ConfigTemplate, dir) fills it in.
const ConfigTemplate = `version = 3
root = "%[1]s/root"
state = "%[1]s/state"
imports = ["%[1]s/conf.d/*.toml"]

[grpc]
  address = "%[1]s/c.sock"

[ttrpc]
  address = "%[1]s/c.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/opt"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.runtime".cni]
  conf_dir = "%[1]s/cni"
`

// Config returns ConfigTemplate with its paths in dir.
func Config(dir string) string {
	return fmt.Sprintf(ConfigTemplate, dir)
}

// BinaryFromEnv returns the containerd binary named by the environment variable envVar. It
// fails t when envVar is unset or the test does not run as root, which containerd needs. The
// failure message names script, the hack script that builds containerd and runs the suite.
func BinaryFromEnv(t testing.TB, envVar, script string) string {
	t.Helper()
	binary := os.Getenv(envVar)
	if binary == "" {
		t.Fatalf("%s is not set; run this test through %s, which builds containerd", envVar, script)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("containerd needs root; run %s as root", script)
	}
	return binary
}

// supervisorScript runs $CONTAINERD on $DIR/config.toml until $DIR/stop exists, and writes
// the pid of each containerd it starts to $DIR/containerd.pid.
const supervisorScript = `
while [ ! -e "$DIR/stop" ]; do
  "$CONTAINERD" --config "$DIR/config.toml" >>"$DIR/containerd.log" 2>&1 &
  echo $! >"$DIR/containerd.pid"
  wait $!
  sleep 0.2
done
`

// Supervisor is a running supervisor loop of a private containerd.
type Supervisor struct {
	dir string
	cmd *exec.Cmd
}

// Start runs the containerd binary on dir/config.toml under a supervisor loop, in a
// process group of its own. It does not wait until containerd serves CRI.
func Start(dir, binary string) (*Supervisor, error) {
	cmd := exec.Command("/bin/sh", "-c", supervisorScript)
	cmd.Env = append(os.Environ(), "DIR="+dir, "CONTAINERD="+binary)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the supervisor loop of containerd in %s: %w", dir, err)
	}
	return &Supervisor{dir: dir, cmd: cmd}, nil
}

// Stop ends the supervisor loop: it creates the stop file, sends SIGTERM to the containerd
// of the pid file and waits until the loop has exited. It returns the error of creating
// the stop file, after it has still sent the signal and waited.
func (s *Supervisor) Stop() error {
	stopErr := os.WriteFile(filepath.Join(s.dir, StopFile), nil, 0o644)
	if data, err := os.ReadFile(filepath.Join(s.dir, PIDFile)); err == nil {
		var pid int
		if _, err := fmt.Sscan(string(data), &pid); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	// The loop's exit status is that of its last command, not a result of the stop, so it
	// is not checked.
	_ = s.cmd.Wait()
	return stopErr
}

// Handlers returns the runtime handlers listed in the CRI Status response of the containerd at
// socket, with a 5-second timeout. It queries CRI directly, not through the installer's
// QueryHandlers, so that tests check the installer against an independent query.
// NOTE: only containerd 2.x fills in that list; for containerd 1.7 it returns no handlers.
func Handlers(socket string) ([]string, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, handler := range resp.GetRuntimeHandlers() {
		names = append(names, handler.GetName())
	}
	return names, nil
}
