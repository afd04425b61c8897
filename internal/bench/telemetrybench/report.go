package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/bench/benchcli"
)

// figure is one name=value line of a phase's output.
type figure struct {
	name   string
	value  float64
	format string
}

// String is name=value, value "n/a" when it is NaN (no data).
func (f figure) String() string { return f.name + "=" + format(f.value, f.format) }

func printFigures(w io.Writer, figs []figure) {
	for _, f := range figs {
		fmt.Fprintln(w, f)
	}
}

// rate returns n per second over d, or 0 when d is not positive.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted, a
// non-empty slice in ascending order, by the nearest-rank method: the
// smallest value that at least p% of the values are at or below.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// latencyFigures are the count, p50 and p99 (in milliseconds) of a latency
// sample, named prefix_count, prefix_p50_ms and prefix_p99_ms. Without
// samples the percentiles are NaN, which the summary prints as n/a.
func latencyFigures(prefix string, values []time.Duration) []figure {
	figs := []figure{{prefix + "_count", float64(len(values)), "%.0f"}}
	slices.Sort(values)
	for _, p := range []struct {
		name string
		p    float64
	}{{"_p50_ms", 50}, {"_p99_ms", 99}} {
		v := math.NaN()
		if len(values) > 0 {
			v = float64(percentile(values, p.p)) / float64(time.Millisecond)
		}
		figs = append(figs, figure{prefix + p.name, v, "%.0f"})
	}
	return figs
}

// The figures the summary derives from the phases' figures.
const (
	// ratioName is the headline: the pipeline's rate over raw paho's; the
	// report's last line.
	ratioName = "e2e_ratio"
	// pipelineRate and rawRate are the rates the ratio divides.
	pipelineRate = "pipeline_msgs_per_s"
	rawRate      = "raw_paho_msgs_per_s"
	// peakRSS, aggregateP99 and aggregateTarget are checked against the
	// issue's targets.
	peakRSS         = "pipeline_peak_rss_mib"
	aggregateP99    = "publish_to_aggregate_row_p99_ms"
	aggregateTarget = "publish_to_aggregate_row_target_ms"
)

// Targets of the benchmark (issue 5).
const (
	targetRatio   = 0.5
	targetRSSMiB  = 1024
	targetSlackMS = 2000 // p99 of publish-to-aggregate-row <= window + this
)

// summarize reads name=value lines (other lines are ignored; a name given
// twice keeps its last value) and returns them in the order the names first
// appear, then one line per target (target_*=met|missed|n/a) and last the
// e2e_ratio line.
func summarize(r io.Reader) ([]string, error) {
	var names []string
	values := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || name == "" || strings.ContainsAny(name, " \t#") {
			continue
		}
		if _, seen := values[name]; !seen {
			names = append(names, name)
		}
		values[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	lines := make([]string, 0, len(names)+4)
	for _, name := range names {
		lines = append(lines, name+"="+values[name])
	}
	num := func(name string) float64 {
		f, err := strconv.ParseFloat(values[name], 64)
		if err != nil {
			return math.NaN()
		}
		return f
	}
	r0 := ratio(num(pipelineRate), num(rawRate))
	lines = append(lines,
		"target_e2e_ratio_at_least_0.5="+verdict(r0, targetRatio, atLeast),
		"target_peak_rss_below_1024_mib="+verdict(num(peakRSS), targetRSSMiB, below),
		"target_aggregate_p99_at_most_window_plus_2s="+verdict(num(aggregateP99), num(aggregateTarget), atMost),
		ratioName+"="+format(r0, "%.3f"))
	return lines, nil
}

// ratio is num/den, NaN when either is not a number or den is zero.
func ratio(num, den float64) float64 {
	if math.IsNaN(num) || math.IsNaN(den) || den == 0 {
		return math.NaN()
	}
	return num / den
}

// Comparisons of a figure with its target, for verdict.
func atLeast(v, target float64) bool { return v >= target }
func atMost(v, target float64) bool  { return v <= target }
func below(v, target float64) bool   { return v < target }

// verdict is "met" when meets(v, target), else "missed"; "n/a" when either
// is NaN (a figure is missing).
func verdict(v, target float64, meets func(v, target float64) bool) string {
	switch {
	case math.IsNaN(v) || math.IsNaN(target):
		return "n/a"
	case meets(v, target):
		return "met"
	default:
		return "missed"
	}
}

// format formats v, or "n/a" when it is NaN.
func format(v float64, f string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf(f, v)
}

func runSummarize(_ context.Context, files []string) error {
	results, err := benchcli.ReadResults("telemetrybench", files)
	if err != nil {
		return err
	}
	lines, err := summarize(results)
	if err != nil {
		return fmt.Errorf("summarize: %w", err)
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}
