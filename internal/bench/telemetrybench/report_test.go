package main

import (
	"strings"
	"testing"
	"time"
)

func ms(n ...int) []time.Duration {
	ds := make([]time.Duration, len(n))
	for i, v := range n {
		ds[i] = time.Duration(v) * time.Millisecond
	}
	return ds
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1 // 1..100 ms
	}
	for _, tc := range []struct {
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond}, // nearest rank: ceil(0.5*4) = 2nd
		{ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
	} {
		if got := percentile(tc.values, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.values, tc.p, got, tc.want)
		}
	}
}

func TestLatencyFigures(t *testing.T) {
	got := latencyFigures("x", ms(300, 100, 200, 1000)) // unsorted on purpose
	want := "x_count=4 x_p50_ms=200 x_p99_ms=1000"
	if s := joinFigures(got); s != want {
		t.Errorf("latencyFigures = %s, want %s", s, want)
	}
	if s := joinFigures(latencyFigures("none", nil)); s != "none_count=0 none_p50_ms=n/a none_p99_ms=n/a" {
		t.Errorf("latencyFigures(no samples) = %s", s)
	}
}

func joinFigures(figs []figure) string {
	s := make([]string, len(figs))
	for i, f := range figs {
		s[i] = f.String()
	}
	return strings.Join(s, " ")
}

func TestRate(t *testing.T) {
	if got := rate(30000, 2*time.Second); got != 15000 {
		t.Errorf("rate = %v, want 15000", got)
	}
	if got := rate(5, 0); got != 0 {
		t.Errorf("rate over no time = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	in := `raw_paho_msgs_per_s=15000
noise without equals
pipeline_msgs_per_s=9000
pipeline_peak_rss_mib=700
publish_to_aggregate_row_p99_ms=12500
publish_to_aggregate_row_target_ms=12000
`
	got, err := summarize(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"raw_paho_msgs_per_s=15000",
		"pipeline_msgs_per_s=9000",
		"pipeline_peak_rss_mib=700",
		"publish_to_aggregate_row_p99_ms=12500",
		"publish_to_aggregate_row_target_ms=12000",
		"target_e2e_ratio_at_least_0.5=met",
		"target_peak_rss_below_1024_mib=met",
		"target_aggregate_p99_at_most_window_plus_2s=missed",
		"e2e_ratio=0.600", // 9000 / 15000, the last line
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("summarize:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSummarizeMissingFigures(t *testing.T) {
	got, err := summarize(strings.NewReader("raw_paho_msgs_per_s=0\npipeline_peak_rss_mib=1024\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "raw_paho_msgs_per_s=0 pipeline_peak_rss_mib=1024 target_e2e_ratio_at_least_0.5=n/a " +
		"target_peak_rss_below_1024_mib=missed target_aggregate_p99_at_most_window_plus_2s=n/a e2e_ratio=n/a"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("summarize = %s\nwant        %s", s, want)
	}
}

func TestWindowStart(t *testing.T) {
	for _, tc := range []struct {
		t, want string
		window  time.Duration
	}{
		{"2026-11-24T20:42:19.999Z", "2026-11-24T20:42:10Z", 10 * time.Second},
		{"2026-11-24T20:42:20Z", "2026-11-24T20:42:20Z", 10 * time.Second},
		{"2026-11-24T20:42:59Z", "2026-11-24T20:42:00Z", time.Minute},
		{"1969-12-31T23:59:55Z", "1969-12-31T23:59:50Z", 10 * time.Second}, // before the epoch
	} {
		at, _ := time.Parse(time.RFC3339Nano, tc.t)
		want, _ := time.Parse(time.RFC3339Nano, tc.want)
		if got := windowStart(at, tc.window); !got.Equal(want) {
			t.Errorf("windowStart(%s, %v) = %s, want %s", tc.t, tc.window, got.UTC(), tc.want)
		}
	}
}

func TestPayloadTS(t *testing.T) {
	got, ok := payloadTS([]byte(`{"battery":3.71,"humidity":40.2,"status":"ok","temperature":21.3,"ts":1767268800123}`))
	if !ok || got.UnixMilli() != 1767268800123 {
		t.Errorf("payloadTS = %v, %v; want 1767268800123 ms", got.UnixMilli(), ok)
	}
	for _, bad := range []string{`not json`, `{"ts":"yesterday"}`, `{"ts":12`} {
		if _, ok := payloadTS([]byte(bad)); ok {
			t.Errorf("payloadTS(%s): ok, want not", bad)
		}
	}
}
