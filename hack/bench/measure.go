package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Series names. The report's targets refer to them, and a name indented by two spaces is a
// part of the series above it.
const (
	seriesPodStart       = "Pod start"
	seriesRunPod         = "  RunPodSandbox"
	seriesCreate         = "  CreateContainer"
	seriesStart          = "  StartContainer"
	seriesContainerStart = "Container start in a running pod"
	seriesVolumeStart    = "Container start with a kubelet's volumes"
	seriesExec           = "ExecSync"
	seriesExitEvent      = "Exit to event, from ExitedAt"
	seriesExitClock      = "Exit to event, from the process clock"
	seriesShimRSS        = "Shim VmRSS per pod"
	seriesShimAnon       = "  RssAnon"
)

// measureAll runs every measurement in turn and collects the results into a report.
func (b *bench) measureAll(ctx context.Context) (*report, error) {
	r := b.newReport()
	begin := time.Now()
	measurements := []struct {
		name string
		run  func(context.Context, *report) ([]*series, error)
	}{
		{"pod start", b.measurePodStart},
		{"container start", b.measureContainerStart},
		{"container start with volumes", b.measureVolumeStart},
		{"ExecSync", b.measureExec},
		{"exit-to-event latency", b.measureExitEvent},
		{"shim memory", b.measureShimMemory},
	}
	for _, m := range measurements {
		fmt.Fprintf(os.Stderr, "bench: measuring %s\n", m.name)
		s, err := m.run(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("measure %s: %w", m.name, err)
		}
		r.series = append(r.series, s...)
	}
	r.elapsed = time.Since(begin)
	return r, nil
}

// measurePodStart times RunPodSandbox, CreateContainer and StartContainer of a new pod with one
// container that keeps running, then removes the pod.
func (b *bench) measurePodStart(ctx context.Context, _ *report) ([]*series, error) {
	total := newSeries(seriesPodStart, milliseconds)
	runPod := newSeries(seriesRunPod, milliseconds)
	create := newSeries(seriesCreate, milliseconds)
	start := newSeries(seriesStart, milliseconds)

	err := b.interleave(ctx, []*series{total, runPod, create, start}, func(ctx context.Context, h *handler, round int) ([]float64, error) {
		begin := time.Now()
		p, err := b.runPod(ctx, h, fmt.Sprintf("start-%s-%d", h.name, round))
		if err != nil {
			return nil, err
		}
		podRunning := time.Now()
		id, err := b.cri.createContainer(ctx, p, h.keepAlive("main", 0))
		if err != nil {
			return nil, err
		}
		created := time.Now()
		if err := b.cri.startContainer(ctx, id); err != nil {
			return nil, err
		}
		started := time.Now()

		if err := b.cri.requireRunning(ctx, id); err != nil {
			return nil, err
		}
		if err := b.removePod(ctx, p); err != nil {
			return nil, err
		}
		return []float64{
			toMilliseconds(started.Sub(begin)),
			toMilliseconds(podRunning.Sub(begin)),
			toMilliseconds(created.Sub(podRunning)),
			toMilliseconds(started.Sub(created)),
		}, nil
	})
	return []*series{total, runPod, create, start}, err
}

// measureContainerStart times CreateContainer and StartContainer in a pod that runs already.
// Each container is removed before the next round.
func (b *bench) measureContainerStart(ctx context.Context, _ *report) ([]*series, error) {
	return b.containerStart(ctx, seriesContainerStart, "cstart", nil)
}

// measureVolumeStart is measureContainerStart for a container with the mounts a kubelet
// passes for a usual pod: a service-account token, a ConfigMap, /etc/hosts and
// /dev/termination-log. Their host sources live in a temporary folder.
func (b *bench) measureVolumeStart(ctx context.Context, _ *report) ([]*series, error) {
	mounts, cleanup, err := kubeletMounts()
	if err != nil {
		return nil, err
	}
	defer cleanup()

	return b.containerStart(ctx, seriesVolumeStart, "vstart", func(config *runtimeapi.ContainerConfig) {
		config.Mounts = mounts
	})
}

// containerStart times CreateContainer and StartContainer of a container that keeps running,
// in a pod per handler, and removes the container after each sample. edit, when not nil,
// changes the container's config first.
func (b *bench) containerStart(ctx context.Context, name, prefix string, edit func(*runtimeapi.ContainerConfig)) ([]*series, error) {
	pods, err := b.runPodPerHandler(ctx, prefix)
	if err != nil {
		return nil, err
	}

	total := newSeries(name, milliseconds)
	create := newSeries(seriesCreate, milliseconds)
	start := newSeries(seriesStart, milliseconds)
	err = b.interleave(ctx, []*series{total, create, start}, func(ctx context.Context, h *handler, round int) ([]float64, error) {
		config := h.keepAlive("main", uint32(round))
		if edit != nil {
			edit(config)
		}

		begin := time.Now()
		id, err := b.cri.createContainer(ctx, pods[h.name], config)
		if err != nil {
			return nil, err
		}
		created := time.Now()
		if err := b.cri.startContainer(ctx, id); err != nil {
			return nil, err
		}
		started := time.Now()

		if err := b.cri.requireRunning(ctx, id); err != nil {
			return nil, err
		}
		if err := b.cri.removeContainer(ctx, id); err != nil {
			return nil, err
		}
		return []float64{
			toMilliseconds(started.Sub(begin)),
			toMilliseconds(created.Sub(begin)),
			toMilliseconds(started.Sub(created)),
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return []*series{total, create, start}, b.removePods(ctx, pods)
}

// kubeletMounts writes the host side of a usual pod's volumes into a new temporary folder
// and returns the mounts with a function that removes the folder.
func kubeletMounts() ([]*runtimeapi.Mount, func(), error) {
	dir, err := os.MkdirTemp("", "reaper-bench-volumes-")
	if err != nil {
		return nil, nil, fmt.Errorf("create the volume folder: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }

	files := map[string]string{
		"serviceaccount/token":     "bench-token\n",
		"serviceaccount/namespace": "default\n",
		"serviceaccount/ca.crt":    "bench-ca\n",
		"configmap/app.conf":       "mode=bench\n",
		"etc-hosts":                "127.0.0.1\tlocalhost\n",
		"termination-log":          "",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("create the volume folder: %w", err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("write the volume file %s: %w", path, err)
		}
	}

	mounts := []*runtimeapi.Mount{
		{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: filepath.Join(dir, "serviceaccount"), Readonly: true},
		{ContainerPath: "/etc/reaper-bench/config", HostPath: filepath.Join(dir, "configmap"), Readonly: true},
		{ContainerPath: "/etc/hosts", HostPath: filepath.Join(dir, "etc-hosts")},
		{ContainerPath: "/dev/termination-log", HostPath: filepath.Join(dir, "termination-log")},
	}
	return mounts, cleanup, nil
}

// measureExec times ExecSync of a command that exits at once, in one running container per
// handler.
func (b *bench) measureExec(ctx context.Context, _ *report) ([]*series, error) {
	pods, err := b.runPodPerHandler(ctx, "exec")
	if err != nil {
		return nil, err
	}
	containers := map[string]string{}
	for _, h := range b.handlers {
		id, err := b.startContainer(ctx, pods[h.name], h.execTarget("main"))
		if err != nil {
			return nil, err
		}
		containers[h.name] = id
	}

	exec := newSeries(seriesExec, milliseconds)
	err = b.interleave(ctx, []*series{exec}, func(ctx context.Context, h *handler, _ int) ([]float64, error) {
		begin := time.Now()
		if err := b.cri.execSync(ctx, containers[h.name], h.execCommand); err != nil {
			return nil, err
		}
		return []float64{toMilliseconds(time.Since(begin))}, nil
	})
	if err != nil {
		return nil, err
	}
	return []*series{exec}, b.removePods(ctx, pods)
}

// measureExitEvent starts containers that run the sleeper for opts.exitDelay and then exit. It
// subtracts two times from the moment bench receives the TaskExit event: the event's ExitedAt,
// which the shim sets when it reaps the process, and the clock that the sleeper wrote just
// before it exited. It also counts the exits that came before StartContainer returned, because
// a shim holds such an exit until the start is complete.
func (b *bench) measureExitEvent(ctx context.Context, r *report) ([]*series, error) {
	pods, err := b.runPodPerHandler(ctx, "exit")
	if err != nil {
		return nil, err
	}
	events, err := subscribeExits(ctx, b.cri.conn)
	if err != nil {
		return nil, err
	}
	defer events.close()

	fromExitedAt := newSeries(seriesExitEvent, milliseconds)
	fromClock := newSeries(seriesExitClock, milliseconds)
	err = b.interleave(ctx, []*series{fromExitedAt, fromClock}, func(ctx context.Context, h *handler, round int) ([]float64, error) {
		clockName := fmt.Sprintf("%s-%d", h.name, round)
		config := h.exiting("exit", uint32(round), b.opts.exitDelay.String(), clockName)
		id, err := b.cri.createContainer(ctx, pods[h.name], config)
		if err != nil {
			return nil, err
		}
		if err := b.cri.startContainer(ctx, id); err != nil {
			return nil, err
		}
		started := time.Now()

		event, err := events.waitMainExit(ctx, id, b.opts.exitDelay+callTimeout)
		if err != nil {
			return nil, err
		}
		clock, err := readClock(filepath.Join(b.clockDir, clockName))
		if err != nil {
			return nil, err
		}
		if clock.Before(started) && round >= b.opts.warmup {
			r.exitsBeforeStart[h.name]++
		}
		if err := b.cri.waitExited(ctx, id); err != nil {
			return nil, err
		}
		if err := b.cri.removeContainer(ctx, id); err != nil {
			return nil, err
		}
		return []float64{
			toMilliseconds(event.received.Sub(event.exitedAt)),
			toMilliseconds(event.received.Sub(clock)),
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return []*series{fromExitedAt, fromClock}, b.removePods(ctx, pods)
}

// measureShimMemory starts opts.pods pods per handler, each with one running container, waits
// opts.settle and reads the VmRSS and RssAnon of every shim that serves them.
func (b *bench) measureShimMemory(ctx context.Context, r *report) ([]*series, error) {
	podIDs := map[string][]string{}
	var started []*pod
	for i := range b.opts.pods {
		for _, h := range b.handlerOrder(i) {
			p, err := b.runPod(ctx, h, fmt.Sprintf("rss-%s-%d", h.name, i))
			if err != nil {
				return nil, err
			}
			started = append(started, p)
			if _, err := b.startContainer(ctx, p, h.keepAlive("main", 0)); err != nil {
				return nil, err
			}
			podIDs[h.name] = append(podIDs[h.name], p.id)
		}
	}
	if err := sleepContext(ctx, b.opts.settle); err != nil {
		return nil, err
	}

	shims, err := findShims(b.opts.dir)
	if err != nil {
		return nil, err
	}
	rss := newSeries(seriesShimRSS, mebibytes)
	anon := newSeries(seriesShimAnon, mebibytes)
	for _, shim := range shims {
		r.shims[shim.handler]++
		if slices.Contains(podIDs[shim.handler], shim.id) {
			rss.add(shim.handler, float64(shim.rssKiB)/1024)
			anon.add(shim.handler, float64(shim.anonKiB)/1024)
		}
	}
	for _, p := range started {
		if err := b.removePod(ctx, p); err != nil {
			return nil, err
		}
	}
	return []*series{rss, anon}, nil
}

// runPodPerHandler starts one pod for each handler, named after prefix and the handler.
func (b *bench) runPodPerHandler(ctx context.Context, prefix string) (map[string]*pod, error) {
	pods := map[string]*pod{}
	for _, h := range b.handlers {
		p, err := b.runPod(ctx, h, prefix+"-"+h.name)
		if err != nil {
			return nil, err
		}
		pods[h.name] = p
	}
	return pods, nil
}

func (b *bench) removePods(ctx context.Context, pods map[string]*pod) error {
	for _, p := range pods {
		if err := b.removePod(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// readClock reads the Unix time in nanoseconds that the sleeper wrote.
func readClock(path string) (time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the clock file of the exiting container: %w", err)
	}
	nanoseconds, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid clock in %s: %w", path, err)
	}
	return time.Unix(0, nanoseconds), nil
}
