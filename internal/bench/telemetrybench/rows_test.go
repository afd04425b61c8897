package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// at is a time on 2026-11-24 at 20:00 plus s seconds.
func at(s float64) time.Time {
	return time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC).Add(time.Duration(s * float64(time.Second)))
}

// watched writes lines to dir/name and returns a growth that saw each line
// appear at its time.
func watched(t *testing.T, dir, name string, lines []string, times []float64) *growth {
	t.Helper()
	g := &growth{path: filepath.Join(dir, name)}
	var size int64
	for i, l := range lines {
		size += int64(len(l)) + 1
		g.observe(size, at(times[i]))
	}
	if err := os.WriteFile(g.path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

func readingLine(device string, event, received float64) string {
	return `{"device_id":"` + device + `","event_time":"` + at(event).Format(time.RFC3339Nano) +
		`","received_at":"` + at(received).Format(time.RFC3339Nano) + `","metrics":[]}`
}

func aggregateLine(device string, start, end float64, pane string) string {
	return `{"device_id":"` + device + `","metric":"temperature","window_start":"` + at(start).Format(time.RFC3339Nano) +
		`","window_end":"` + at(end).Format(time.RFC3339Nano) + `","pane":"` + pane + `"}`
}

// analyze turns row appearances into the latencies the script defines.
func TestAnalyze(t *testing.T) {
	dir := t.TempDir()
	readings := watched(t, dir, "readings.jsonl", []string{
		readingLine("a", 1, 1.1),   // appears at 1.3: 300 ms
		readingLine("a", 9, 9.05),  // appears at 9.2: 200 ms
		readingLine("c", 5, 11.8),  // read after its window closed, no aggregate of c
		readingLine("b", 12, 12.1), // the last message read; its window [10,20) is the final one
	}, []float64{1.3, 9.2, 12, 12.4})
	aggregates := watched(t, dir, "aggregates.jsonl", []string{
		aggregateLine("a", 0, 10, "on_time"),  // closes 1.5 s after its end
		aggregateLine("a", 0, 10, "on_time"),  // another metric, 1.6 s
		aggregateLine("a", 0, 10, "late"),     // late panes have no close delay
		aggregateLine("b", 10, 20, "on_time"), // fired by the stop, before its end
	}, []float64{11.5, 11.6, 11.7, 12.5})

	res, err := analyze(readings, aggregates, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := joinFigures(res.figures(10 * time.Second))
	want := strings.Join([]string{
		"pipeline_msgs_per_s=0", // 4 rows over 11 s, printed rounded: checked below
		"pipeline_readings_rows=4",
		"pipeline_read_span_s=11.0",
		"publish_to_reading_row_count=4 publish_to_reading_row_p50_ms=300 publish_to_reading_row_p99_ms=7000",
		"window_close_delay_count=2 window_close_delay_p50_ms=1500 window_close_delay_p99_ms=1600",
		// a's messages at 1 s and 9 s, and the row of [0,10) at 11.5 s.
		"publish_to_aggregate_row_count=2 publish_to_aggregate_row_p50_ms=2500 publish_to_aggregate_row_p99_ms=10500",
		"publish_to_aggregate_row_target_ms=12000",
		"readings_without_on_time_aggregate=1",
		"aggregate_rows=4",
		"aggregate_rows_of_final_windows=1",
	}, " ")
	if got != want {
		t.Errorf("figures:\n%s\nwant:\n%s", got, want)
	}
	if r := rate(res.readings, res.lastRead.Sub(res.firstReceived)); r < 0.3636 || r > 0.3637 {
		t.Errorf("rate = %v, want 4/11", r)
	}
}

// A line the watcher never saw complete is an error, not a row with a
// made-up time; a partial last line is not a row yet.
func TestAnalyzeUnwatchedLine(t *testing.T) {
	dir := t.TempDir()
	g := watched(t, dir, "readings.jsonl", []string{readingLine("a", 1, 1.1)}, []float64{1.3})
	f, err := os.OpenFile(g.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"device_id":"partial`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	none := &growth{path: filepath.Join(dir, "aggregates.jsonl")} // never written
	res, err := analyze(g, none, 10*time.Second)
	if err != nil || res.readings != 1 || res.aggregateRows != 0 {
		t.Fatalf("analyze with a partial line = %+v, %v; want 1 reading", res, err)
	}

	late := &growth{path: g.path}
	late.observe(10, at(1)) // saw only the first 10 bytes
	if _, err := analyze(late, none, 10*time.Second); err == nil || !strings.Contains(err.Error(), "not seen by the watcher") {
		t.Errorf("analyze of an unwatched line: %v, want 'not seen by the watcher'", err)
	}
}
