package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

const (
	sectionStart = "<!-- controller benchmark: start -->"
	sectionEnd   = "<!-- controller benchmark: end -->"
)

func (r *result) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Nodes created in %s, all ready after %s\n", r.created.Round(time.Millisecond), r.ready.Round(time.Millisecond))
	fmt.Fprintf(&b, "controller requests until all ready: %s\n", formatCounts(r.requests))
	fmt.Fprintf(&b, "controller writes until all ready: %s\n", formatCounts(r.writes))
	fmt.Fprintf(&b, "controller writes in %s of steady state: %d %s\n", r.opts.quiet, total(r.quietWrites), formatCounts(r.quietWrites))
	return b.String()
}

// markdown returns the controller section of docs/benchmarks.md, markers included.
func (r *result) markdown() string {
	var b strings.Builder
	b.WriteString(sectionStart + "\n")
	b.WriteString("## Controller\n\n")
	b.WriteString("`make bench-controller` (hack/bench/controller) measures reaper-controller against envtest's real\n" +
		"kube-apiserver and etcd, built by hack/envtest-bins.sh. It creates the Nodes, all selected, while\n" +
		"simulated agents, one goroutine each for a number of nodes at a time, add the handler to each Node's\n" +
		"status.runtimeHandlers and apply phase Ready to its ReaperNode. The time runs from the first Node's\n" +
		"create until every Node carries the ready label. Then the benchmark counts the controller's writes\n" +
		"while nothing changes. The API server, etcd, the controller and the agents share the machine, and\n" +
		"the benchmark does not stop other work on it, so the load average shows how busy it was.\n" +
		"`make bench` rewrites the page above this section and keeps this section.\n\n")

	b.WriteString("| Run | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| Date | %s |\n", r.date.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "| Command | `%s` |\n", r.opts.command)
	fmt.Fprintf(&b, "| Machine | %s |\n", machine())
	fmt.Fprintf(&b, "| Load average (1, 5, 15 min) at the end | %s |\n", r.load)
	fmt.Fprintf(&b, "| Nodes | %d, created by %d goroutines |\n", r.opts.nodes, r.opts.creators)
	fmt.Fprintf(&b, "| Simulated agents | %d at a time |\n", r.opts.agents)
	fmt.Fprintf(&b, "| Controller | %d node workers, %.0f requests/s with bursts of %d |\n\n", r.opts.workers, r.opts.qps, r.opts.burst)

	b.WriteString("| Measurement | Result |\n| --- | ---: |\n")
	fmt.Fprintf(&b, "| Nodes created | %s |\n", r.created.Round(time.Millisecond))
	fmt.Fprintf(&b, "| Every Node labeled ready, from the first create | %s |\n", r.ready.Round(time.Millisecond))
	fmt.Fprintf(&b, "| Controller writes in %s of steady state | %d |\n\n", r.opts.quiet, total(r.quietWrites))

	b.WriteString("| Goal | Result |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| Every Node ready in under %s | %s |\n", readyGoal, verdict(r.ready < readyGoal))
	fmt.Fprintf(&b, "| No controller writes in steady state | %s |\n\n", verdict(total(r.quietWrites) == 0))

	b.WriteString("Requests of the controller until every Node was ready, by verb. Its cache fills through watches,\n" +
		"because client-go's WatchListClient feature is on by default since v1.35, so WATCH includes the\n" +
		"initial lists. The writes include the controller's Events.\n\n")
	b.WriteString("| Verb | Requests | Per Node |\n| --- | ---: | ---: |\n")
	for _, verb := range sortedKeys(r.requests) {
		fmt.Fprintf(&b, "| %s | %d | %.2f |\n", verb, r.requests[verb], float64(r.requests[verb])/float64(r.opts.nodes))
	}
	b.WriteString("\nThe writes by path, with NAME for one Node's name:\n\n")
	b.WriteString("| Write | Requests |\n| --- | ---: |\n")
	for _, key := range sortedKeys(r.writes) {
		fmt.Fprintf(&b, "| `%s` | %d |\n", key, r.writes[key])
	}
	b.WriteString(sectionEnd + "\n")
	return b.String()
}

// readyGoal is the time in which every Node of the benchmark should carry the ready label.
// NOTE: runs on a 2-core machine, which also runs the API server, etcd and the simulated
// agents, took about 1m30s. A CPU profile of kube-apiserver during one run spent most time
// in updates (ReaperNode status with schema coercion and managed fields, Node patches),
// and 5000 fewer Events or more node workers did not shorten the run.
const readyGoal = time.Minute

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}

// writeSection replaces the controller section of the page at path, or appends it.
func writeSection(path, section string) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	page := string(data)
	start, end := strings.Index(page, sectionStart), strings.Index(page, sectionEnd)
	if start >= 0 && end > start {
		page = page[:start] + section + strings.TrimPrefix(page[end+len(sectionEnd):], "\n")
	} else {
		page = strings.TrimRight(page, "\n") + "\n\n" + section
	}
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadAverage returns the first three fields of /proc/loadavg.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], ", ")
}

// machine describes the CPU and memory, as /proc reports them.
func machine() string {
	model, memory := "unknown CPU", ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				model = strings.TrimSpace(value)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kib); err == nil {
			memory = fmt.Sprintf(", %.1f GiB memory", float64(kib)/(1<<20))
		}
	}
	return fmt.Sprintf("%s, %d cores%s", model, runtime.NumCPU(), memory)
}

func formatCounts(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for _, key := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s=%d", key, counts[key]))
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
