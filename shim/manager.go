package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cdshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"reaper.dev/reaper/runtime"
)

// RuntimeName is the runtime type containerd maps to this shim binary.
const RuntimeName = "io.containerd.reaper.v2"

// shimAPIVersion is the task API version the shim serves. With version 3, containerd
// connects every container of a pod to the sandbox's shim without starting another.
const shimAPIVersion = 3

// Version is the shim's version, set at build time.
var Version = "dev"

// Manager implements the start, delete and -info modes of the shim binary.
type Manager struct{}

var _ cdshim.Shim = Manager{}

// Name returns the runtime type.
func (Manager) Name() string {
	return RuntimeName
}

// Start starts the serving shim of the container's pod, or returns the address of
// the one already serving it.
func (Manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	group, err := groupID(params.GetInstanceID())
	if err != nil {
		return nil, err
	}

	socketDir := params.GetSocketDir()
	if socketDir == "" {
		socketDir = filepath.Join(defaults.DefaultStateDir, "s")
	}

	address, err := cdshim.CreateSocketAddress(ctx, socketDir, params.GetContainerdGrpcAddress(), group, false)
	if err != nil {
		return nil, fmt.Errorf("failed to compute the shim socket address: %w", err)
	}

	result := &bootapi.BootstrapResult{Version: shimAPIVersion, Protocol: "ttrpc", Address: address}
	listener, err := listen(address)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return result, nil
	}
	if err != nil {
		return nil, err
	}
	// The serving shim inherits the socket; closing the start process's copy must not
	// unlink the path.
	listener.SetUnlinkOnClose(false)
	defer listener.Close()

	if err := startServer(ctx, params, group, listener); err != nil {
		_ = cdshim.RemoveSocket(address)
		return nil, err
	}
	return result, nil
}

// groupID returns the pod a container belongs to, from the bundle's spec in the
// working directory. A container outside a CRI pod gets a shim of its own.
func groupID(instanceID string) (string, error) {
	spec, err := runtime.LoadSpec(".")
	if err != nil {
		return "", err
	}

	if sandboxID := spec.Annotations[runtime.AnnotationSandboxID]; sandboxID != "" {
		return sandboxID, nil
	}
	return instanceID, nil
}

// listen creates the shim socket. errdefs.ErrAlreadyExists means a live shim of the
// same pod already serves it.
func listen(address string) (*net.UnixListener, error) {
	listener, err := cdshim.NewSocket(address)
	if err == nil {
		return listener, nil
	}

	if !cdshim.SocketEaddrinuse(err) {
		return nil, fmt.Errorf("failed to create the shim socket %s: %w", address, err)
	}

	if cdshim.CanConnect(address) {
		return nil, errdefs.ErrAlreadyExists
	}

	if err := cdshim.RemoveSocket(address); err != nil {
		return nil, fmt.Errorf("failed to remove the stale shim socket %s: %w", address, err)
	}
	listener, err = cdshim.NewSocket(address)
	if err != nil {
		return nil, fmt.Errorf("failed to create the shim socket %s: %w", address, err)
	}
	return listener, nil
}

// startServer re-executes the shim binary in serve mode with the socket as fd 3.
// Its stdout and stderr stay unset: containerd reads the start process's output
// until every holder closes it.
func startServer(ctx context.Context, params *bootapi.BootstrapParams, group string, listener *net.UnixListener) error {
	socket, err := listener.File()
	if err != nil {
		return fmt.Errorf("failed to get the shim socket file: %w", err)
	}
	defer socket.Close()

	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}

	args := []string{"-namespace", ns, "-id", group, "-address", params.GetContainerdGrpcAddress()}
	if params.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG {
		args = append(args, "-debug")
	}

	cmd := exec.Command(selfExecutable, args...)
	cmd.Args[0] = os.Args[0]
	cmd.Dir, err = os.Getwd()
	if err != nil {
		return err
	}
	cmd.Env = append(os.Environ(),
		"TTRPC_ADDRESS="+params.GetContainerdTtrpcAddress(),
		"GRPC_ADDRESS="+params.GetContainerdGrpcAddress(),
	)
	cmd.ExtraFiles = []*os.File{socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start the serving shim: %w", err)
	}
	go cmd.Wait() //nolint:errcheck // The start process exits right after; this only avoids a zombie meanwhile.

	if err := cdshim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("failed to adjust the OOM score of the shim: %w", err)
	}
	return nil
}

// Stop runs in the delete mode, after containerd has lost its connection to the
// shim of container id: it kills what is left of the container and returns the
// recorded exit, or 137 when none was recorded.
func (Manager) Stop(ctx context.Context, id string) (cdshim.StopStatus, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return cdshim.StopStatus{}, err
	}

	// containerd runs delete in the bundle of the sandbox or of the container itself;
	// every bundle of a namespace shares one parent folder.
	bundle := filepath.Join(filepath.Dir(cwd), id)
	status := cdshim.StopStatus{ExitStatus: 128 + int(syscall.SIGKILL), ExitedAt: time.Now()}
	removeDeadSocket(ctx, bundle)

	host, err := runtime.Load(filepath.Join(bundle, stateDirName), id)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Debug("no container state to clean up")
		return status, nil
	}
	status.Pid = host.Pid

	if exit, err := host.ReadExit(); err == nil {
		status.ExitStatus, status.ExitedAt = exit.Status, exit.ExitedAt
	}

	if err := host.Delete(true); err != nil {
		return status, err
	}
	return status, nil
}

// removeDeadSocket removes the pod's shim socket when no shim serves it any more, as
// after a SIGKILL, which skips the shim's own cleanup. containerd records the address
// in the bootstrap.json of every bundle it connects to the shim.
func removeDeadSocket(ctx context.Context, bundle string) {
	data, err := os.ReadFile(filepath.Join(bundle, "bootstrap.json"))
	if err != nil {
		return
	}

	var bootstrap struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(data, &bootstrap); err != nil || bootstrap.Address == "" {
		return
	}

	if cdshim.CanConnect(bootstrap.Address) {
		return
	}
	// After a normal shutdown the shim has removed its socket already.
	if err := cdshim.RemoveSocket(bootstrap.Address); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.G(ctx).WithError(err).WithField("address", bootstrap.Address).Warn("failed to remove the socket of a dead shim")
	}
}

// Info returns the runtime's name and version for containerd's introspection.
func (Manager) Info(ctx context.Context, optionsR io.Reader) (*types.RuntimeInfo, error) {
	features, err := typeurl.MarshalAnyToProto(runtimeFeatures())
	if err != nil {
		return nil, fmt.Errorf("failed to encode the runtime features: %w", err)
	}

	return &types.RuntimeInfo{
		Name:     RuntimeName,
		Version:  &types.RuntimeVersion{Version: Version},
		Features: features,
	}, nil
}

// runtimeFeatures are the OCI runtime features that containerd's CRI reads from Info:
// the mount options the init helper applies, which include recursive read-only.
// Namespaces are left out, so CRI offers no user namespaces.
func runtimeFeatures() *features.Features {
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		MountOptions:  runtime.MountOptions,
	}
}
