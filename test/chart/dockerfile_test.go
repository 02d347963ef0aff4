package chart

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerfileMatchesMakeImage checks that the Dockerfile builds what make build and make
// image build: the same ldflags, entrypoint and user.
func TestDockerfileMatchesMakeImage(t *testing.T) {
	dockerfile := readText(t, "../../Dockerfile")
	makefile := readText(t, "../../Makefile")

	ldflags := regexp.MustCompile(`-ldflags "([^"]*)"`)
	fromMake := ldflags.FindStringSubmatch(makefile)
	fromDocker := ldflags.FindStringSubmatch(dockerfile)
	if fromMake == nil || fromDocker == nil {
		t.Fatalf("no -ldflags in the Makefile (%v) or the Dockerfile (%v)", fromMake, fromDocker)
	}
	if want := strings.ReplaceAll(fromMake[1], "$(VERSION)", "${VERSION}"); fromDocker[1] != want {
		t.Errorf("Dockerfile ldflags %q, want the Makefile's %q", fromDocker[1], want)
	}

	for _, want := range []string{
		"FROM golang:1.26 AS build",
		"CGO_ENABLED=0 go build -trimpath",
		"./cmd/...",
		"COPY --from=build /out/ /usr/local/bin/",
		"USER 65532:65532",
		`ENTRYPOINT ["/usr/local/bin/reaper-controller"]`,
	} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}

	ignored := strings.Fields(readText(t, "../../.dockerignore"))
	for _, want := range []string{".cache", "bin"} {
		if !slices.Contains(ignored, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
