package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the outcome of one run: where and how it ran, and every series.
type report struct {
	date       time.Time
	machine    machine
	containerd string
	runc       string
	command    string
	opts       options
	series     []*series
	elapsed    time.Duration
	// exitsBeforeStart counts, per handler, the measured exit samples whose process exited
	// before StartContainer had returned.
	exitsBeforeStart map[string]int
	// shims counts, per handler, the serving shims found under DIR during the memory
	// measurement.
	shims map[string]int
}

func (b *bench) newReport() *report {
	command := b.opts.command
	if command == "" {
		command = strings.Join(os.Args, " ")
	}
	return &report{
		date:             time.Now().UTC(),
		machine:          describeMachine(),
		containerd:       b.containerd,
		runc:             b.runc,
		command:          command,
		opts:             b.opts,
		exitsBeforeStart: map[string]int{},
		shims:            map[string]int{},
	}
}

// table returns the medians as an aligned plain-text table.
func (r *report) table() string {
	var out strings.Builder
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "MEASUREMENT\tREAPER\tRUNC\tREAPER/RUNC\tSAMPLES")
	for _, s := range r.series {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.name, r.median(s, "reaper"), r.median(s, "runc"), ratioText(s), samplesText(s))
	}
	w.Flush()
	return out.String()
}

// median returns the handler's median of s with its unit, or "-".
func (r *report) median(s *series, handler string) string {
	value, ok := s.median(handler)
	if !ok {
		return "-"
	}
	return formatValue(value, s.unit)
}

func formatValue(value float64, unit string) string {
	switch {
	case value < 1:
		return fmt.Sprintf("%.3f %s", value, unit)
	case value < 100:
		return fmt.Sprintf("%.2f %s", value, unit)
	default:
		return fmt.Sprintf("%.1f %s", value, unit)
	}
}

func ratioText(s *series) string {
	ratio, ok := s.ratio()
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f", ratio)
}

// samplesText returns the sample count, or the count of each handler when they differ.
func samplesText(s *series) string {
	reaper, runc := len(s.values["reaper"]), len(s.values["runc"])
	if reaper == runc {
		return fmt.Sprint(reaper)
	}
	return fmt.Sprintf("%d reaper, %d runc", reaper, runc)
}

// spreadText returns the 10th and 90th percentile of the handler's samples.
func spreadText(s *series, handler string) string {
	low, ok := percentile(s.values[handler], 10)
	if !ok {
		return "-"
	}
	high, _ := percentile(s.values[handler], 90)
	return formatValue(low, s.unit) + " to " + formatValue(high, s.unit)
}

func (r *report) find(name string) *series {
	for _, s := range r.series {
		if s.name == name {
			return s
		}
	}
	return newSeries(name, "")
}

// targetResult is one project target and whether this run met it.
type targetResult struct {
	target   string
	measured string
	met      bool
}

// targets checks the medians against the project's targets: reaper at or below half of runc's
// start and exec latency, exit to event under 5 ms, and a reaper shim at or below 0.7 of the
// runc shim's memory.
func (r *report) targets() []targetResult {
	return []targetResult{
		r.ratioTarget(seriesPodStart, 0.5),
		r.ratioTarget(seriesContainerStart, 0.5),
		r.ratioTarget(seriesExec, 0.5),
		r.limitTarget(seriesExitEvent, 5),
		r.limitTarget(seriesExitClock, 5),
		r.ratioTarget(seriesShimRSS, 0.7),
	}
}

func (r *report) ratioTarget(name string, maxRatio float64) targetResult {
	result := targetResult{target: fmt.Sprintf("%s: reaper at most %.1f × runc", name, maxRatio), measured: "no samples"}
	s := r.find(name)
	if ratio, ok := s.ratio(); ok {
		// Three decimals, so that a ratio just above the limit does not print as the limit.
		result.measured = fmt.Sprintf("%.3f × runc (%s against %s)", ratio, r.median(s, "reaper"), r.median(s, "runc"))
		result.met = ratio <= maxRatio
	}
	return result
}

func (r *report) limitTarget(name string, limitMilliseconds float64) targetResult {
	result := targetResult{target: fmt.Sprintf("%s: reaper under %g ms", name, limitMilliseconds), measured: "no samples"}
	s := r.find(name)
	if median, ok := s.median("reaper"); ok {
		result.measured = fmt.Sprintf("%s (runc %s)", r.median(s, "reaper"), r.median(s, "runc"))
		result.met = median < limitMilliseconds
	}
	return result
}
