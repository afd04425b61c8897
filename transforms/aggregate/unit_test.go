package aggregate

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
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

func TestAccumulatorStats(t *testing.T) {
	a := newAccumulator()
	sec := int64(time.Second)
	for _, p := range []point{
		{Time: 3 * sec, Hash: 1, Value: 7},
		{Time: 1 * sec, Hash: 9, Value: -2},
		{Time: 3 * sec, Hash: 1, Value: 7}, // a copy
		{Time: 1 * sec, Hash: 4, Value: 5}, // same time, other payload: first by hash
		{Time: 2 * sec, Hash: 1, Value: 0},
	} {
		a.add(p)
	}
	got := a.stats()
	want := Aggregate{Count: 4, Min: -2, Max: 7, Sum: 10, Mean: 2.5, First: 5, Last: 7,
		FirstTime: time.Unix(1, 0).UTC(), LastTime: time.Unix(3, 0).UTC()}
	if got != want {
		t.Errorf("stats = %+v\nwant %+v", got, want)
	}
	if (&accumulator{points: map[pointKey]float64{}}).stats() != (Aggregate{}) {
		t.Error("stats of nothing is not zero")
	}
}

// BenchmarkAggregate measures the work per reading of one window: adding
// (and deduplicating) the point, and its share of computing the statistics.
func BenchmarkAggregate(b *testing.B) {
	const perWindow = 60 // a reading a second, one-minute windows
	b.ReportAllocs()
	a := newAccumulator()
	for i := 0; b.Loop(); i++ {
		a.add(point{Time: int64(i%perWindow) * int64(time.Second), Hash: uint64(i), Value: float64(i)})
		if i%perWindow == perWindow-1 {
			_ = a.stats()
			a = newAccumulator()
		}
	}
}

func TestSampleCoderRoundTrips(t *testing.T) {
	for _, s := range []sample{
		{},
		{Time: -5, Hash: 1<<64 - 1, Values: []metricValue{{"temperature", 21.5}, {"", -0.25}}},
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
