package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/mqttbeam/mqttbeam/internal/bench/benchcli"
)

// figure is one name=value line of a phase's output.
type figure struct {
	name   string
	value  float64
	format string
}

func (f figure) String() string { return f.name + "=" + fmt.Sprintf(f.format, f.value) }

func printFigures(figs []figure) {
	for _, f := range figs {
		fmt.Println(f)
	}
}

// ratios are the summary's ratio lines: name, numerator, denominator. The
// last one is the benchmark's headline and ends the report.
var ratios = [][3]string{
	{"write_qos1_ratio", "write_qos1_msgs_per_s", "raw_paho_publish_qos1_msgs_per_s"},
	{"read_qos1_default_inflight_ratio", "read_qos1_default_inflight_msgs_per_s", "raw_paho_qos1_default_inflight_msgs_per_s"},
	{"read_qos1_raised_inflight_ratio", "read_qos1_raised_inflight_msgs_per_s", "raw_paho_qos1_raised_inflight_msgs_per_s"},
	// MQTT 5: mqttio over plain paho.golang, then over mqttio at MQTT 3.1.1.
	{"write5_qos1_ratio", "write5_qos1_msgs_per_s", "raw_paho5_publish_qos1_msgs_per_s"},
	{"read5_qos0_ratio", "read5_qos0_msgs_per_s", "raw_paho5_qos0_msgs_per_s"},
	{"read5_qos1_default_inflight_ratio", "read5_qos1_default_inflight_msgs_per_s", "raw_paho5_qos1_default_inflight_msgs_per_s"},
	{"read5_qos1_raised_inflight_ratio", "read5_qos1_raised_inflight_msgs_per_s", "raw_paho5_qos1_raised_inflight_msgs_per_s"},
	{"write5_vs_v3_qos1", "write5_qos1_msgs_per_s", "write_qos1_msgs_per_s"},
	{"read5_vs_v3_qos0", "read5_qos0_msgs_per_s", "read_qos0_msgs_per_s"},
	{"read5_vs_v3_qos1_default_inflight", "read5_qos1_default_inflight_msgs_per_s", "read_qos1_default_inflight_msgs_per_s"},
	{"read5_vs_v3_qos1_raised_inflight", "read5_qos1_raised_inflight_msgs_per_s", "read_qos1_raised_inflight_msgs_per_s"},
	{"read_qos0_ratio", "read_qos0_msgs_per_s", "raw_paho_qos0_msgs_per_s"},
}

// summarize reads name=value lines (other lines are ignored) and returns one
// line per name, in the order the names first appear, followed by the ratio
// lines. A name given several numeric values (a phase run more than once)
// gets their median; spread lists those names with all their values. A ratio
// whose figures are missing, not numbers, or zero in the denominator is "n/a".
func summarize(r io.Reader) (lines, spread []string, err error) {
	var names []string
	values := map[string][]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" || strings.ContainsAny(name, " \t#") {
			continue
		}
		if _, seen := values[name]; !seen {
			names = append(names, name)
		}
		values[name] = append(values[name], value)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	final := map[string]string{}
	for _, name := range names {
		vs := values[name]
		final[name] = median(vs)
		lines = append(lines, name+"="+final[name])
		if len(vs) > 1 {
			spread = append(spread, name+": "+strings.Join(vs, " "))
		}
	}
	for _, r := range ratios {
		lines = append(lines, r[0]+"="+ratio(final[r[1]], final[r[2]]))
	}
	return lines, spread, nil
}

// median returns the median of values when they are all numbers, formatted
// like the first, and otherwise the last value.
func median(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	nums := make([]float64, len(values))
	for i, v := range values {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return values[len(values)-1]
		}
		nums[i] = f
	}
	slices.Sort(nums)
	m := nums[len(nums)/2]
	if len(nums)%2 == 0 {
		m = (nums[len(nums)/2-1] + m) / 2
	}
	decimals := 0
	if _, frac, ok := strings.Cut(values[0], "."); ok {
		decimals = len(frac)
	}
	return strconv.FormatFloat(m, 'f', decimals, 64)
}

func ratio(num, den string) string {
	n, err1 := strconv.ParseFloat(num, 64)
	d, err2 := strconv.ParseFloat(den, 64)
	if err1 != nil || err2 != nil || d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", n/d)
}

func runSummarize(_ context.Context, files []string) error {
	results, err := benchcli.ReadResults("mqttiobench", files)
	if err != nil {
		return err
	}
	lines, spread, err := summarize(results)
	if err != nil {
		return err
	}
	for _, l := range spread {
		fmt.Fprintln(os.Stderr, "runs of "+l)
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}

// statusKB returns a "Field:   123 kB" value of /proc/self/status in kB.
func statusKB(status, field string) (int64, error) {
	for line := range strings.Lines(status) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", field, strings.TrimSpace(line))
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// memKB reads a field of /proc/self/status: VmHWM (peak RSS) or VmRSS.
func memKB(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return statusKB(string(b), field)
}
