package e2e

import (
	"fmt"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// timingRuns is how many pods each handler starts for the record.
const timingRuns = 3

// placeholderCommand is the program inside the placeholder image, for handlers that run the
// image's root filesystem.
var placeholderCommand = []string{"/placeholder"}

// TestStartupTiming records how long RunPodSandbox, CreateContainer and StartContainer take
// with Reaper and with runc on the same containerd. It asserts nothing about the durations.
func TestStartupTiming(t *testing.T) {
	s := start(t)
	cases := []struct {
		handler string
		// config returns the container to start. runc runs it inside the image, so it gets
		// the image's own program. Reaper runs host binaries.
		config func() *runtimeapi.ContainerConfig
	}{
		{handler: "reaper", config: func() *runtimeapi.ContainerConfig {
			return containerConfig("timing", "/bin/sleep", "600")
		}},
		{handler: "runc", config: func() *runtimeapi.ContainerConfig {
			return containerConfig("timing", placeholderCommand...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.handler, func(t *testing.T) {
			for run := 1; run <= timingRuns; run++ {
				s.recordStartup(t, tc.handler, run, tc.config())
			}
		})
	}
}

// recordStartup starts one pod with one container, logs and prints the duration of each CRI
// call, then removes the pod.
func (s *suite) recordStartup(t *testing.T, handler string, run int, config *runtimeapi.ContainerConfig) {
	t.Helper()
	begin := time.Now()
	p, err := s.tryRunPod(t, "timing", handler)
	runPod := time.Since(begin)
	if err != nil {
		t.Fatalf("RunPodSandbox with handler %q failed: %v", handler, err)
	}

	begin = time.Now()
	c, err := s.tryCreateContainer(p, config)
	create := time.Since(begin)
	if err != nil {
		t.Fatalf("CreateContainer with handler %q failed: %v", handler, err)
	}

	begin = time.Now()
	err = s.tryStartContainer(c)
	startCall := time.Since(begin)
	if err != nil {
		t.Fatalf("StartContainer with handler %q failed: %v", handler, err)
	}

	line := fmt.Sprintf("timing handler=%s run=%d RunPodSandbox=%s CreateContainer=%s StartContainer=%s total=%s",
		handler, run, round(runPod), round(create), round(startCall), round(runPod+create+startCall))
	t.Log(line)
	// Printed to stdout as well, because t.Log output of a passing test appears only with -v.
	fmt.Println(line)

	s.stopAndRemovePod(t, p)
}

func round(d time.Duration) time.Duration {
	return d.Round(100 * time.Microsecond)
}
