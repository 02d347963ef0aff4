package main

import (
	"fmt"
	"strings"
	"time"
)

// markdown returns the report as the page docs/benchmarks.md.
func (r *report) markdown() string {
	var out strings.Builder
	r.writeHeader(&out)
	r.writeResults(&out)
	r.writeTargets(&out)
	writeMethod(&out, r)
	return out.String()
}

func (r *report) writeHeader(out *strings.Builder) {
	cgroup := "cgroup v1"
	if r.machine.cgroupV2 {
		cgroup = "cgroup v2"
	}
	fmt.Fprintf(out, `# Benchmarks

This page compares the reaper runtime handler with runc on the same containerd. `+"`make bench`"+`
(hack/bench) measures both and rewrites this page, so it shows the last run only. It needs
root, like `+"`make e2e`"+`. `+"`make bench BENCH_FLAGS=\"-samples 50 -pods 20\"`"+` changes the number
of samples and pods.

| Run | |
| --- | --- |
| Date | %s |
| Command | `+"`%s`"+` |
| Machine | %s, %d cores, %s memory |
| Kernel | %s, %s, cgroupfs driver |
| containerd | %s |
| runc | %s |
| Samples | %d per handler for each latency, %d pods per handler for memory |
| Warm-up rounds | %d per handler before each latency measurement, not counted |
| Duration | %s |

The numbers come from one run on this %d-core machine. bench does not stop other work on the
machine, so its load is part of the numbers. Both handlers run on one containerd, and each
latency sample of reaper is followed or preceded by one of runc, in alternating order, so that
a slow-down that lasts longer than one round affects both alike. The results are medians, and
the ratio is reaper's median divided by runc's.

`, r.date.Format("2006-01-02 15:04 MST"), r.command,
		r.machine.cpu, r.machine.cores, r.machine.memory, r.machine.kernel, cgroup,
		r.containerd, r.runc,
		r.opts.samples, r.opts.pods, r.opts.warmup, r.elapsed.Round(time.Second),
		r.machine.cores)
}

func (r *report) writeResults(out *strings.Builder) {
	out.WriteString("## Results\n\n")
	out.WriteString("| Measurement | reaper | runc | reaper/runc | Samples per handler |\n")
	out.WriteString("| --- | ---: | ---: | ---: | ---: |\n")
	for _, s := range r.series {
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n",
			markdownName(s.name), r.median(s, "reaper"), r.median(s, "runc"), ratioText(s), samplesText(s))
	}

	out.WriteString("\nSpread of the same samples, from the 10th to the 90th percentile:\n\n")
	out.WriteString("| Measurement | reaper | runc |\n")
	out.WriteString("| --- | ---: | ---: |\n")
	for _, s := range r.series {
		fmt.Fprintf(out, "| %s | %s | %s |\n", markdownName(s.name), spreadText(s, "reaper"), spreadText(s, "runc"))
	}
	out.WriteString("\n")
}

// markdownName shows an indented series name, such as a part of pod start, as a sub-item of
// the row above.
func markdownName(name string) string {
	if trimmed, ok := strings.CutPrefix(name, "  "); ok {
		return "&nbsp;&nbsp;" + trimmed
	}
	return name
}

func (r *report) writeTargets(out *strings.Builder) {
	out.WriteString("## Targets\n\n")
	out.WriteString("| Target | Measured median | Met |\n")
	out.WriteString("| --- | --- | --- |\n")
	for _, t := range r.targets() {
		met := "no"
		if t.met {
			met = "yes"
		}
		fmt.Fprintf(out, "| %s | %s | %s |\n", t.target, t.measured, met)
	}
	out.WriteString("\n")
}

func writeMethod(out *strings.Builder, r *report) {
	fmt.Fprintf(out, `## What is measured

hack/bench/run.sh starts a private containerd with hack/containerd-up.sh in a new directory
under /tmp, runs bench against it through the CRI API, and tears everything down with
hack/containerd-down.sh, also after a failure or Ctrl-C. It then removes the pods' parent
cgroup. Every pod is a hostNetwork pod. Times are taken in bench, the CRI client, so they
include the gRPC round trips to containerd.

Reaper runs host binaries and ignores the image, while runc runs what the image or a mount
contains. The placeholder image that Reaper pods name contains only /placeholder, which
prints one line and exits at once, so runc gets these programs instead:

| Use | reaper | runc |
| --- | --- | --- |
| Process that keeps running | `+"`/bin/sleep 3600`"+` from the host, placeholder image | the pause image's own entrypoint `+"`/pause`"+`, no command and no mounts |
| ExecSync target | the same `+"`/bin/sleep`"+` container | placeholder image running the sleeper, bind-mounted read-only at /sleeper |
| ExecSync command | `+"`/bin/true`"+` from the host (dynamically linked) | `+"`/placeholder`"+`, the image's own static Go binary, which prints one line |
| Exiting container | the sleeper from the host | the sleeper, bind-mounted read-only at /sleeper, with the clock directory mounted at /clock |

The sleeper is hack/bench/sleeper, built static. It sleeps, writes the current time to a file
if asked to, and exits 0.

- **Pod start**: RunPodSandbox, CreateContainer and StartContainer of a new pod with one
  container that keeps running, until StartContainer returns. containerd marks the container
  running before StartContainer returns, and bench checks this afterwards with an untimed
  ContainerStatus. The rows below it split the time into the three calls. The pod is removed
  after each sample, untimed.
- **Container start in a running pod**: CreateContainer and StartContainer of a container
  that keeps running, in a pod that was started before, with the two calls in the rows below.
  Each container is stopped and removed before the next sample, untimed.
- **Container start with a kubelet's volumes**: the same, for a container with the bind
  mounts a kubelet passes for a usual pod: a service-account token folder (read-only) at
  `+"`/var/run/secrets/kubernetes.io/serviceaccount`"+`, a ConfigMap folder (read-only) at
  `+"`/etc/reaper-bench/config`"+`, `+"`/etc/hosts`"+` and `+"`/dev/termination-log`"+`. The host has none of
  those paths but `+"`/etc/hosts`"+`, so under reaper each start builds overlays for them in the
  container's mount namespace.
- **ExecSync**: one ExecSync call of the command above in a running container, until it
  returns with exit status 0.
- **Exit to event**: a new container in a running pod runs the sleeper for %s, so that
  StartContainer has returned, and the sleeper exits. bench subscribes to containerd's
  `+"`/tasks/exit`"+` events in namespace k8s.io through containerd's Events API, the service that
  the Go client's `+"`EventService().Subscribe`"+` calls, and takes the time when the event arrives.
  *From ExitedAt* subtracts the event's ExitedAt, the time the shim set when it reaped the
  process. It covers the shim's event publishing and containerd's forwarding, but not the
  reaping itself. *From the process clock* subtracts the time the sleeper wrote to its file
  just before it exited, so it also covers the process exit and the reaping. Both use the
  host's real-time clock. A shim holds an exit that comes before StartContainer has returned
  until the start completes, which lengthens that sample. Such samples in this run: reaper %d,
  runc %d. In the runc container the sleeper is PID 1 of the container's PID namespace, so its
  exit also ends that namespace.
- **Shim VmRSS per pod**: bench starts %d pods per handler, each with one running container,
  waits %s, and reads VmRSS from /proc/PID/status of every serving shim. A serving shim is a
  process whose executable is containerd-shim-reaper-v2 or containerd-shim-runc-v2 and whose
  `+"`-address`"+` is under the containerd directory. The median is over the shims whose `+"`-id`"+`
  is one of these pods. VmRSS counts the pages that the shims of one binary share, such as
  the binary's code, in each shim. The RssAnon row below it is the resident anonymous memory
  alone, such as heap and stacks, which no other shim shares. Serving shims found under the
  directory: reaper %d, runc %d, for %d pods each. containerd 2.x connects every container of
  a pod to the shim of its sandbox, so both handlers are expected to run one shim per pod. The
  pods' own processes (reaper's pause process, runc's pause and container processes) are not
  counted.
`, r.opts.exitDelay,
		r.exitsBeforeStart["reaper"], r.exitsBeforeStart["runc"],
		r.opts.pods, r.opts.settle, r.shims["reaper"], r.shims["runc"], r.opts.pods)
}
