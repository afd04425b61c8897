package aggregate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
)

func init() {
	register.Function1x1(readingName)
}

// readingName names a reading by device and offset from base.
func readingName(r telemetry.Reading) string {
	return fmt.Sprintf("%s@%v", r.DeviceID, r.EventTime.Sub(base))
}

// runWithLate runs PerWindowWithLate over the stream and checks that it
// outputs exactly want and the too-late readings named tooLate.
func (s *stream) runWithLate(want []Aggregate, tooLate []string, opts ...Option) beam.PipelineResult {
	s.t.Helper()
	if err := s.cfg.AdvanceWatermarkToInfinity(); err != nil {
		s.t.Fatal(err)
	}
	p, sc := beam.NewPipelineWithRoot()
	in := beam.ParDo(sc, decodeReading, teststream.Create(sc, s.cfg))
	out, late := PerWindowWithLate(sc, in, opts...)
	wantAny := make([]any, len(want))
	for i, w := range want {
		wantAny[i] = w
	}
	passert.Equals(sc, beam.WindowInto(sc, window.NewGlobalWindows(), out), wantAny...)
	lateAny := make([]any, len(tooLate))
	for i, n := range tooLate {
		lateAny[i] = n
	}
	passert.Equals(sc, beam.ParDo(sc, readingName, late), lateAny...)
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		s.t.Fatalf("pipeline failed: %v", err)
	}
	return res
}

// A reading within the allowed lateness makes a late pane and is not
// counted as too late; one that comes after the watermark passed its
// window's end plus the lateness is in no pane, is counted and comes out
// of the too-late output. Other devices and windows are unaffected.
func TestTooLateReadingsCounted(t *testing.T) {
	s := newStream(t).
		add(reading("a", 10*time.Second, 1, map[string]float64{"temp": 1})).
		add(reading("b", 15*time.Second, 2, map[string]float64{"temp": 5})).
		watermark(time.Minute).
		add(reading("a", 20*time.Second, 3, map[string]float64{"temp": 3})). // late, within lateness
		add(reading("a", 70*time.Second, 4, map[string]float64{"temp": 7})).
		// The window [0, 1m) expires when the watermark reaches 2m.
		watermark(2 * time.Minute).
		add(reading("a", 40*time.Second, 5, map[string]float64{"temp": 9})). // too late
		add(reading("b", 50*time.Second, 6, map[string]float64{"temp": 9})). // too late
		add(reading("a", 100*time.Second, 7, map[string]float64{"temp": 8})) // late, within lateness
	res := s.runWithLate([]Aggregate{
		stats("a", "temp", 0, time.Minute, PaneOnTime, 0, ds(10), vs(1)),
		stats("a", "temp", 0, time.Minute, PaneLate, 1, ds(10, 20), vs(1, 3)),
		stats("b", "temp", 0, time.Minute, PaneOnTime, 0, ds(15), vs(5)),
		// Prism fires the closing late pane of b's window, unchanged.
		stats("b", "temp", 0, time.Minute, PaneLate, 1, ds(15), vs(5)),
		stats("a", "temp", time.Minute, 2*time.Minute, PaneOnTime, 0, ds(70), vs(7)),
		stats("a", "temp", time.Minute, 2*time.Minute, PaneLate, 1, ds(70, 100), vs(7, 8)),
	}, []string{"a@40s", "b@50s"}, Fixed(time.Minute), AllowedLateness(time.Minute), LateShards(1))
	if got := counter(res, "readings_too_late"); got != 2 {
		t.Errorf("readings_too_late counter = %d, want 2", got)
	}
	if got := counter(res, "readings"); got != 7 {
		t.Errorf("readings counter = %d, want 7", got)
	}
}

// Without allowed lateness, a reading is too late as soon as the
// watermark reaches its window's end; PerWindow counts it too.
func TestTooLateWithoutLateness(t *testing.T) {
	s := newStream(t).
		add(reading("a", 10*time.Second, 1, map[string]float64{"temp": 1})).
		watermark(time.Minute).
		add(reading("a", 30*time.Second, 2, map[string]float64{"temp": 2}))
	res := s.run([]Aggregate{
		stats("a", "temp", 0, time.Minute, PaneOnTime, 0, ds(10), vs(1)),
	}, Fixed(time.Minute))
	if got := counter(res, "readings_too_late"); got != 1 {
		t.Errorf("readings_too_late counter = %d, want 1", got)
	}
}

// A sliding-window reading is too late once all its windows expired; one
// with an open window still counts there.
func TestTooLateSliding(t *testing.T) {
	s := newStream(t).
		add(reading("a", 90*time.Second, 1, map[string]float64{"temp": 1})).
		watermark(3 * time.Minute).
		add(reading("a", 100*time.Second, 2, map[string]float64{"temp": 2})). // [0, 2m) and [1m, 3m) expired
		add(reading("a", 130*time.Second, 3, map[string]float64{"temp": 3}))  // [2m, 4m) is open
	res := s.runWithLate([]Aggregate{
		stats("a", "temp", 0, 2*time.Minute, PaneOnTime, 0, ds(90), vs(1)),
		stats("a", "temp", time.Minute, 3*time.Minute, PaneOnTime, 0, ds(90), vs(1)),
		stats("a", "temp", 2*time.Minute, 4*time.Minute, PaneOnTime, 0, ds(130), vs(3)),
	}, []string{"a@1m40s"}, Sliding(2*time.Minute, time.Minute), LateShards(1))
	if got := counter(res, "readings_too_late"); got != 1 {
		t.Errorf("readings_too_late counter = %d, want 1", got)
	}
}

func TestExpiries(t *testing.T) {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	tests := []struct {
		name        string
		opts        []Option
		at          time.Duration
		first, last time.Duration
	}{
		{"fixed", []Option{Fixed(time.Minute)}, 10 * time.Second, time.Minute, time.Minute},
		{"fixed at start", []Option{Fixed(time.Minute)}, time.Minute, 2 * time.Minute, 2 * time.Minute},
		{"fixed before epoch", []Option{Fixed(time.Minute)}, -10 * time.Second, 0, 0},
		{"fixed lateness", []Option{Fixed(time.Minute), AllowedLateness(30 * time.Second)}, 0, 90 * time.Second, 90 * time.Second},
		// 90s is in [0, 2m) and [1m, 3m).
		{"sliding", []Option{Sliding(2*time.Minute, time.Minute)}, 90 * time.Second, 2 * time.Minute, 3 * time.Minute},
		{"sliding boundary", []Option{Sliding(2*time.Minute, time.Minute)}, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute},
		{"session", []Option{Session(10 * time.Second), AllowedLateness(time.Second)}, 5 * time.Second, 16 * time.Second, 16 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := newConfig(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			first, last := cfg.expiries(ms(tt.at))
			if first != ms(tt.first) || last != ms(tt.last) {
				t.Errorf("expiries(%v) = %v, %v; want %v, %v", tt.at,
					time.Duration(first)*time.Millisecond, time.Duration(last)*time.Millisecond, tt.first, tt.last)
			}
		})
	}
}

func TestLateShardsOption(t *testing.T) {
	for _, n := range []int{0, -1, maxLateShards + 1} {
		if _, err := newConfig([]Option{LateShards(n)}); err == nil || !strings.Contains(err.Error(), "LateShards") {
			t.Errorf("LateShards(%d): error %v, want one naming LateShards", n, err)
		}
	}
	// A window option after LateShards keeps the shards.
	cfg, err := newConfig([]Option{LateShards(3), Session(time.Second)})
	if err != nil || cfg.Shards != 3 {
		t.Errorf("LateShards(3), Session: shards %d, error %v; want 3, nil", cfg.Shards, err)
	}
}

// memState is the value state of one key, in memory.
type memState struct {
	state.Provider // the other kinds of state are not used
	values         map[string]any
}

func (m *memState) ReadValueState(id string) (any, []state.Transaction, error) {
	return m.values[id], nil, nil
}

func (m *memState) WriteValueState(t state.Transaction) error {
	m.values[t.Key] = t.Val
	return nil
}

// countTimers counts the timers set.
type countTimers int

func (c *countTimers) Set(timers.TimerMap) { *c++ }

// BenchmarkDropTooLate is the per-reading cost of the too-late filter
// outside the runner (shard, batch coder, state read, timers, the samples
// it passes on and their coder), a reading a second in bundles of 1000; the
// runner adds a shuffle of one batch per shard and bundle, and its state
// and timer calls.
func BenchmarkDropTooLate(b *testing.B) {
	cfg, err := newConfig([]Option{Fixed(time.Minute), AllowedLateness(time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	shard := &shardFn{Shards: DefaultLateShards}
	fn := &tooLateFn{Windows: cfg, Expired: state.MakeValueState[int64]("expired"), Expiry: timers.InEventTime("expiry")}
	sp := &memState{values: map[string]any{}}
	var tp countTimers
	ctx := context.Background()
	var passed, late int
	keep := func(_ beam.EventTime, _ int64, ss samples) {
		// They cross the GroupByKey next.
		got, err := decodeSamples(encodeSamples(ss))
		if err != nil {
			b.Fatal(err)
		}
		passed += len(got.List)
	}
	drop := func(beam.EventTime, telemetry.Reading) { late++ }
	check := func(_ beam.EventTime, k int64, bt batch) {
		enc, err := encodeBatch(bt)
		if err != nil {
			b.Fatal(err)
		}
		if bt, err = decodeBatch(enc); err != nil {
			b.Fatal(err)
		}
		if err := fn.ProcessElement(ctx, sp, &tp, k, bt, keep, drop); err != nil {
			b.Fatal(err)
		}
	}
	r := reading("d1", 0, 1, map[string]float64{"temp": 1})
	b.ReportAllocs()
	shard.StartBundle(ctx, check)
	fn.StartBundle(keep, drop)
	for i := 0; b.Loop(); i++ {
		r.EventTime = base.Add(time.Duration(i) * time.Second)
		shard.ProcessElement(ctx, r, check)
		if i%1000 == 999 {
			shard.FinishBundle(ctx, check)
			shard.StartBundle(ctx, check)
			fn.StartBundle(keep, drop)
		}
	}
	shard.FinishBundle(ctx, check)
	if late != 0 {
		b.Fatalf("%d of %d in-order readings taken for too late", late, passed+late)
	}
}

func TestBatchCoderRoundTrips(t *testing.T) {
	in := batch{Readings: []telemetry.Reading{
		reading("d1", 0, 1, map[string]float64{"temp": 1}),
		reading("d2", 5, 2, nil),
	}}
	enc, err := encodeBatch(in)
	require.NoError(t, err)
	out, err := decodeBatch(enc)
	require.NoError(t, err)
	require.Equal(t, len(in.Readings), len(out.Readings))
	for i := range in.Readings {
		require.True(t, in.Readings[i].EventTime.Equal(out.Readings[i].EventTime))
		require.Equal(t, in.Readings[i].DeviceID, out.Readings[i].DeviceID)
		require.Equal(t, in.Readings[i].PayloadHash, out.Readings[i].PayloadHash)
	}
	for i := range enc {
		_, err := decodeBatch(enc[:i])
		require.Error(t, err, "cut at %d of %d", i, len(enc))
	}
}
