package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations that CRI sets on every container spec it creates.
const (
	AnnotationContainerType = "io.kubernetes.cri.container-type"
	AnnotationSandboxID     = "io.kubernetes.cri.sandbox-id"

	ContainerTypeSandbox = "sandbox"
)

// LoadSpec reads and decodes the config.json of an OCI bundle.
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read OCI spec: %w", err)
	}

	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("failed to decode OCI spec %s: %w", path, err)
	}

	if spec.Process == nil {
		return nil, fmt.Errorf("invalid OCI spec %s: the process section is missing", path)
	}
	return &spec, nil
}

// IsSandbox reports whether spec describes a CRI pod sandbox (the pause container).
func IsSandbox(spec *specs.Spec) bool {
	return spec.Annotations[AnnotationContainerType] == ContainerTypeSandbox
}
