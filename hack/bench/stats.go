package main

import (
	"slices"
	"time"
)

// Units of a series.
const (
	milliseconds = "ms"
	mebibytes    = "MiB"
)

// series holds the samples of one measured quantity for each runtime handler.
type series struct {
	name   string
	unit   string
	values map[string][]float64
}

func newSeries(name, unit string) *series {
	return &series{name: name, unit: unit, values: map[string][]float64{}}
}

func (s *series) add(handler string, value float64) {
	s.values[handler] = append(s.values[handler], value)
}

// median returns the median sample of handler, and false when there is none.
func (s *series) median(handler string) (float64, bool) {
	return percentile(s.values[handler], 50)
}

// ratio returns the reaper median divided by the runc median, and false when either is missing
// or the runc median is zero.
func (s *series) ratio() (float64, bool) {
	reaper, ok := s.median("reaper")
	if !ok {
		return 0, false
	}
	runc, ok := s.median("runc")
	if !ok || runc == 0 {
		return 0, false
	}
	return reaper / runc, true
}

// percentile returns the p-th percentile of values by linear interpolation between the closest
// ranks, so the 50th is the usual median. It returns false for no values.
func percentile(values []float64, p float64) (float64, bool) {
	if len(values) == 0 {
		return 0, false
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := p / 100 * float64(len(sorted)-1)
	low := int(rank)
	if low+1 >= len(sorted) {
		return sorted[len(sorted)-1], true
	}
	fraction := rank - float64(low)
	return sorted[low] + fraction*(sorted[low+1]-sorted[low]), true
}

func toMilliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
