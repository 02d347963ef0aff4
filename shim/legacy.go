package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	cdshim "github.com/containerd/containerd/v2/pkg/shim"
)

// maxStdinSize bounds what the start mode reads from containerd.
const maxStdinSize = 10 << 20

// Run runs the shim binary in the mode that containerd's arguments select. containerd 2.3 and later
// start a shim with BootstrapParams on stdin and read a BootstrapResult. containerd
// 1.7 to 2.2 pass flags and environment variables and read a bare address (task API
// v2) or JSON. containerd's shim library speaks only the first protocol, so Run
// answers the older start itself and hands every other mode to the library.
func Run(ctx context.Context) {
	flags, ok := parseStartFlags(os.Args[1:])
	if !ok {
		cdshim.RunShim(ctx, Manager{})
		return
	}

	input, err := io.ReadAll(io.LimitReader(os.Stdin, maxStdinSize))
	if err != nil {
		fail(fmt.Errorf("failed to read stdin: %w", err))
	}

	if isBootstrap(input, flags) {
		os.Stdin = replayStdin(input)
		cdshim.RunShim(ctx, Manager{})
		return
	}

	if err := startLegacy(ctx, flags); err != nil {
		fail(err)
	}
	os.Exit(0)
}

// startFlags are the flags containerd passes to the start mode.
type startFlags struct {
	namespace string
	id        string
	address   string
	debug     bool
}

// parseStartFlags returns the flags when args ask for the start mode.
func parseStartFlags(args []string) (startFlags, bool) {
	var flags startFlags
	set := flag.NewFlagSet("start", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	set.StringVar(&flags.namespace, "namespace", "", "")
	set.StringVar(&flags.id, "id", "", "")
	set.StringVar(&flags.address, "address", "", "")
	set.BoolVar(&flags.debug, "debug", false, "")
	set.String("publish-binary", "", "")
	set.String("socket", "", "")
	set.String("debug-socket", "", "")
	set.String("bundle", "", "")

	if err := set.Parse(args); err != nil || set.Arg(0) != "start" {
		return startFlags{}, false
	}
	return flags, true
}

// isBootstrap reports whether input is the BootstrapParams of containerd 2.3 or
// later. Runtime options that older versions send can decode as BootstrapParams
// too, so the ids must match the flags.
func isBootstrap(input []byte, flags startFlags) bool {
	if len(input) == 0 {
		return false
	}

	var params bootapi.BootstrapParams
	if err := proto.Unmarshal(input, &params); err != nil {
		return false
	}
	return params.InstanceID == flags.id && params.Namespace == flags.namespace
}

func replayStdin(input []byte) *os.File {
	reader, writer, err := os.Pipe()
	if err != nil {
		fail(fmt.Errorf("failed to create a pipe for stdin: %w", err))
	}

	go func() {
		_, _ = io.Copy(writer, bytes.NewReader(input))
		writer.Close()
	}()
	return reader
}

// startLegacy starts (or finds) the pod's shim for containerd 1.7 to 2.2 and prints
// the address in the form that version reads.
func startLegacy(ctx context.Context, flags startFlags) error {
	params := &bootapi.BootstrapParams{
		InstanceID:             flags.id,
		Namespace:              flags.namespace,
		ContainerdGrpcAddress:  flags.address,
		ContainerdTtrpcAddress: os.Getenv("TTRPC_ADDRESS"),
	}
	if dir := legacySocketDir(); dir != "" {
		params.SocketDir = &dir
	}
	if flags.debug {
		params.LogLevel = bootapi.LogLevel_LOG_LEVEL_DEBUG
	}

	ctx = namespaces.WithNamespace(ctx, flags.namespace)
	result, err := Manager{}.Start(ctx, params)
	if err != nil {
		return err
	}

	// containerd 1.7 reconnects after a restart through the address file in the bundle;
	// later versions write bootstrap.json themselves.
	if err := os.WriteFile("address", []byte(result.Address), 0o600); err != nil {
		return fmt.Errorf("failed to write the shim address file: %w", err)
	}
	return writeLegacyResult(os.Stdout, result)
}

// legacySocketDir returns the "s" folder in containerd's state folder, which holds
// the bundles at STATE/io.containerd.runtime.v2.task/NAMESPACE/ID. These versions
// tell the shim no socket folder; for the default state /run/containerd this is
// the folder they use themselves.
func legacySocketDir() string {
	bundle, err := os.Getwd()
	if err != nil {
		return ""
	}
	return filepath.Join(bundle, "..", "..", "..", "s")
}

// writeLegacyResult prints a bare address (task API v2), or JSON with version 3 when
// containerd sets MAX_SHIM_VERSION to 3 or more.
func writeLegacyResult(out io.Writer, result *bootapi.BootstrapResult) error {
	maxVersion, err := strconv.Atoi(os.Getenv("MAX_SHIM_VERSION"))
	if err != nil || maxVersion < shimAPIVersion {
		_, err := io.WriteString(out, result.Address)
		return err
	}

	return json.NewEncoder(out).Encode(struct {
		Version  int    `json:"version"`
		Address  string `json:"address"`
		Protocol string `json:"protocol"`
	}{int(result.Version), result.Address, result.Protocol})
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "%s: %s", RuntimeName, err)
	os.Exit(1)
}
