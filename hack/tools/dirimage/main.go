// Command dirimage builds an image from folders and adds it to an OCI image layout, once under
// each -name. Each -layer folder becomes one layer. Every file in a layer is owned by root and
// dated at the Unix epoch, so the same folders always give the same digests and images that
// share a folder share its layer.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"reaper.dev/reaper/hack/tools/internal/imagebuild"
)

// refNameAnnotation is the OCI layout annotation that names an image. dirimage stores the full
// reference in it, registry host included, so that one layout can hold images of several hosts.
const refNameAnnotation = "org.opencontainers.image.ref.name"

type options struct {
	layoutDir  string
	layers     []string
	names      []string
	entrypoint []string
	cmd        []string
	env        []string
	user       string
	workdir    string
	arch       string
}

// stringList is a flag that may be repeated; each use appends one value.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// jsonArgs is a flag holding a JSON array of strings, the form of a Dockerfile's exec-form CMD.
type jsonArgs []string

func (a *jsonArgs) String() string {
	if *a == nil {
		return ""
	}
	out, _ := json.Marshal([]string(*a))
	return string(out)
}

func (a *jsonArgs) Set(v string) error {
	var args []string
	if err := json.Unmarshal([]byte(v), &args); err != nil {
		return fmt.Errorf("%q is not a JSON array of strings, such as [\"sh\", \"-c\", \"true\"]: %w", v, err)
	}
	*a = args
	return nil
}

func main() {
	var opts options
	var layers, names, env stringList
	var entrypoint, cmd jsonArgs
	flag.StringVar(&opts.layoutDir, "layout", "", "OCI image layout folder to add the image to; created when missing (required)")
	flag.Var(&layers, "layer", "folder whose tree becomes the next layer; repeat for more layers, lowest first (required)")
	flag.Var(&names, "name", "full image reference, such as registry.k8s.io/pause:3.9; repeat to add the image under more names (required)")
	flag.Var(&entrypoint, "entrypoint", "entrypoint as a JSON array of strings")
	flag.Var(&cmd, "cmd", "default arguments (CMD) as a JSON array of strings")
	flag.Var(&env, "env", "KEY=VALUE environment variable; repeat for more (default: a standard PATH)")
	flag.StringVar(&opts.user, "user", "", "user the entrypoint runs as, such as 1002, www-data or 1003:1004 (default: the runtime's, root)")
	flag.StringVar(&opts.workdir, "workdir", "/", "working directory of the entrypoint")
	flag.StringVar(&opts.arch, "arch", runtime.GOARCH, "GOARCH of the binaries in the layers")
	flag.Parse()

	opts.layers, opts.names, opts.env = layers, names, env
	opts.entrypoint, opts.cmd = entrypoint, cmd
	if err := run(opts); err != nil {
		fmt.Fprintf(os.Stderr, "dirimage: %v\n", err)
		os.Exit(1)
	}
}

func run(opts options) error {
	if opts.layoutDir == "" || len(opts.layers) == 0 || len(opts.names) == 0 {
		return fmt.Errorf("-layout, at least one -layer and at least one -name are required; see -help")
	}
	for _, ref := range opts.names {
		if _, err := name.ParseReference(ref, name.StrictValidation); err != nil {
			return fmt.Errorf("invalid -name %q (give the registry host, repository and tag in full): %w", ref, err)
		}
	}

	img, err := buildImage(opts)
	if err != nil {
		return err
	}
	path, err := openLayout(opts.layoutDir)
	if err != nil {
		return err
	}
	for _, ref := range opts.names {
		// ReplaceImage drops an older image of the same name, so a rebuild stays idempotent.
		err := path.ReplaceImage(img, match.Annotation(refNameAnnotation, ref),
			layout.WithAnnotations(map[string]string{refNameAnnotation: ref}))
		if err != nil {
			return fmt.Errorf("add %s to layout %s: %w", ref, opts.layoutDir, err)
		}
	}
	return nil
}

// buildImage stacks the layers on an empty image and sets the platform and process config.
func buildImage(opts options) (v1.Image, error) {
	env := opts.env
	if len(env) == 0 {
		env = []string{imagebuild.DefaultPathEnv}
	}
	config := imagebuild.ConfigFile(opts.arch, v1.Config{
		Entrypoint: opts.entrypoint,
		Cmd:        opts.cmd,
		Env:        env,
		User:       opts.user,
		WorkingDir: opts.workdir,
	})
	img, err := mutate.ConfigFile(empty.Image, config)
	if err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}

	for _, dir := range opts.layers {
		layer, err := folderLayer(dir)
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   layer,
			History: imagebuild.History("dirimage: add the files of one folder"),
		})
		if err != nil {
			return nil, fmt.Errorf("append layer of %s: %w", dir, err)
		}
	}
	return img, nil
}

// openLayout opens the OCI image layout in dir, or creates an empty one when dir holds none.
func openLayout(dir string) (layout.Path, error) {
	path, err := layout.FromPath(dir)
	if err == nil {
		return path, nil
	}
	if _, statErr := os.Stat(dir + "/index.json"); !os.IsNotExist(statErr) {
		return "", fmt.Errorf("open OCI image layout %s: %w", dir, err)
	}
	path, err = layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("create OCI image layout %s: %w", dir, err)
	}
	return path, nil
}
