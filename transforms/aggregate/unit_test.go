package aggregate

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/stretchr/testify/require"
)

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want config
		err  string // a part of the error; "" for none
	}{
		{"default", nil, config{Kind: kindFixed, Size: time.Minute}, ""},
		{"fixed", []Option{Fixed(5 * time.Minute), AllowedLateness(time.Hour)},
			config{Kind: kindFixed, Size: 5 * time.Minute, AllowedLateness: time.Hour}, ""},
		{"lateness first", []Option{AllowedLateness(time.Hour), Session(time.Minute)},
			config{Kind: kindSession, Gap: time.Minute, AllowedLateness: time.Hour}, ""},
		{"sliding", []Option{Sliding(time.Hour, time.Minute)},
			config{Kind: kindSliding, Size: time.Hour, Period: time.Minute}, ""},
		{"sliding period = size", []Option{Sliding(time.Minute, time.Minute)},
			config{Kind: kindSliding, Size: time.Minute, Period: time.Minute}, ""},
		{"fixed zero", []Option{Fixed(0)}, config{}, "Fixed: size must be positive"},
		{"fixed sub-millisecond", []Option{Fixed(time.Microsecond)}, config{}, "Fixed: size 1µs is not a whole number of milliseconds"},
		{"sliding negative period", []Option{Sliding(time.Minute, -time.Second)}, config{}, "Sliding: period must be positive"},
		{"sliding period > size", []Option{Sliding(time.Minute, time.Hour)}, config{}, "Sliding: period 1h0m0s is longer than size 1m0s"},
		{"session zero", []Option{Session(0)}, config{}, "Session: gap must be positive"},
		{"lateness negative", []Option{AllowedLateness(-time.Second)}, config{}, "AllowedLateness: -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newConfig(tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("config = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTryPerWindowRejectsBadOption(t *testing.T) {
	_, s := beam.NewPipelineWithRoot()
	if _, err := TryPerWindow(s, beam.PCollection{}, Session(-1)); err == nil || !strings.Contains(err.Error(), "Session") {
		t.Fatalf("error = %v, want one naming Session", err)
	}
}

func TestStatsOf(t *testing.T) {
	sec := int64(time.Second)
	values := func(t, h float64) []metricValue {
		return []metricValue{{"temperature", t}, {"humidity", h}}
	}
	got, copies := statsOf([]sample{
		{Time: 3 * sec, Hash: 1, Values: values(7, 70)},
		{Time: 1 * sec, Hash: 9, Values: values(-2, 20)},
		{Time: 3 * sec, Hash: 1, Values: values(7, 70)},                     // a copy
		{Time: 1 * sec, Hash: 4, Values: values(5, 50)},                     // same time, other payload: first by hash
		{Time: 2 * sec, Hash: 1, Values: []metricValue{{"temperature", 0}}}, // no humidity
	})
	want := []Aggregate{
		{Metric: "humidity", Count: 3, Min: 20, Max: 70, Sum: 140, Mean: 140.0 / 3, First: 50, Last: 70,
			FirstTime: time.Unix(1, 0).UTC(), LastTime: time.Unix(3, 0).UTC()},
		{Metric: "temperature", Count: 4, Min: -2, Max: 7, Sum: 10, Mean: 2.5, First: 5, Last: 7,
			FirstTime: time.Unix(1, 0).UTC(), LastTime: time.Unix(3, 0).UTC()},
	}
	if !reflect.DeepEqual(got, want) || copies != 2 {
		t.Errorf("statsOf = %+v, %d copies\nwant %+v, 2 copies", got, copies, want)
	}
	if got, copies := statsOf(nil); len(got) != 0 || copies != 0 {
		t.Errorf("statsOf(nil) = %+v, %d", got, copies)
	}
}

// BenchmarkAggregate measures the work per reading of one window of a
// device: its share of sorting, deduplicating and computing the statistics
// of three metrics.
func BenchmarkAggregate(b *testing.B) {
	const perWindow = 60 // a reading a second, one-minute windows
	b.ReportAllocs()
	window := make([]sample, 0, perWindow)
	for i := 0; b.Loop(); i++ {
		v := float64(i)
		window = append(window, sample{Time: int64(perWindow-i%perWindow) * int64(time.Second), Hash: uint64(i),
			Values: []metricValue{{"temperature", v}, {"humidity", v}, {"battery", v}}})
		if len(window) == perWindow {
			_, _ = statsOf(window)
			window = window[:0]
		}
	}
}

func TestSampleCoderRoundTrips(t *testing.T) {
	for _, s := range []sample{
		{},
		{Device: "d-1", Time: -5, Hash: 1<<64 - 1, Values: []metricValue{{"temperature", 21.5}, {"", -0.25}}},
	} {
		b := encodeSample(s)
		got, err := decodeSample(b)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("decodeSample(encodeSample(%+v)) = %+v, %v", s, got, err)
		}
		for i := range b {
			if _, err := decodeSample(b[:i]); err == nil {
				t.Errorf("decoding %d of %d bytes of %+v: no error", i, len(b), s)
			}
		}
	}
}

func TestSamplesCoderRoundTrips(t *testing.T) {
	for _, ss := range []samples{
		{List: []sample{}},
		{List: []sample{
			{Device: "d-1", Time: 7, Hash: 3, Values: []metricValue{{"temperature", 21.5}}},
			{Device: "d-2", Time: -5, Hash: 1<<64 - 1},
		}},
	} {
		b := encodeSamples(ss)
		got, err := decodeSamples(b)
		if err != nil || !reflect.DeepEqual(got, ss) {
			t.Fatalf("decodeSamples(encodeSamples(%+v)) = %+v, %v", ss, got, err)
		}
		for i := range b {
			if _, err := decodeSamples(b[:i]); err == nil {
				t.Errorf("decoding %d of %d bytes of %+v: no error", i, len(b), ss)
			}
		}
	}
}

// A batch of samples is emitted at one time of its slice and windowed by
// it, so every time of a slice must fall into the same windows, by Beam's
// definition: windows start every period (size for fixed windows) from the
// epoch and hold [start, start+size).
func TestSliceTimesShareWindows(t *testing.T) {
	windowsOf := func(cfg config, ts int64) []int64 {
		size, period := cfg.Size.Milliseconds(), cfg.Period.Milliseconds()
		if cfg.Kind == kindFixed {
			period = size
		}
		var starts []int64
		for start := floorDiv(ts, period) * period; start > ts-size; start -= period {
			starts = append(starts, start)
		}
		return starts
	}
	for _, opts := range [][]Option{
		{Fixed(10 * time.Second)},
		{Fixed(1500 * time.Millisecond)},
		{Sliding(time.Minute, 20*time.Second)},
		{Sliding(25*time.Second, 10*time.Second)},
		{Sliding(7*time.Second, 7*time.Second)},
	} {
		cfg, err := newConfig(opts)
		require.NoError(t, err)
		first := map[int64][]int64{} // slice -> windows of its first time
		n := 0
		for ts := int64(-300_000); ts < 300_000; ts += 7 {
			slice := cfg.sliceOf(ts)
			want, seen := first[slice]
			if !seen {
				first[slice] = windowsOf(cfg, ts)
				n++
				continue
			}
			require.Equal(t, want, windowsOf(cfg, ts), "%+v: time %d of slice %d", cfg, ts, slice)
		}
		require.Greater(t, n, 10, "%+v", cfg)
	}
}
