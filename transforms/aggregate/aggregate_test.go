package aggregate

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"

	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
)

func init() {
	register.Function1x2(decodeReading)
}

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

// base is the start of the tests' event time, aligned to the hour.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// decodeReading turns the JSON the tests' TestStreams carry into a Reading.
func decodeReading(s string) (telemetry.Reading, error) {
	var r telemetry.Reading
	err := json.Unmarshal([]byte(s), &r)
	return r, err
}

func reading(device string, at time.Duration, hash uint64, metrics map[string]float64) telemetry.Reading {
	return telemetry.Reading{
		DeviceID:    device,
		Topic:       "devices/" + device + "/telemetry/env",
		Kind:        "env",
		EventTime:   base.Add(at),
		ReceivedAt:  base.Add(at + time.Second),
		TimeSource:  telemetry.TimeFromPayload,
		Metrics:     metrics,
		PayloadHash: hash,
	}
}

// stream is a TestStream under construction.
type stream struct {
	t   *testing.T
	cfg teststream.Config
}

func newStream(t *testing.T) *stream {
	return &stream{t: t, cfg: teststream.NewConfig()}
}

// add adds readings, each with its EventTime as element timestamp.
func (s *stream) add(rs ...telemetry.Reading) *stream {
	s.t.Helper()
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			s.t.Fatal(err)
		}
		if err := s.cfg.AddElements(r.EventTime.UnixMilli(), string(b)); err != nil {
			s.t.Fatal(err)
		}
	}
	return s
}

// watermark advances the watermark to base+at.
func (s *stream) watermark(at time.Duration) *stream {
	s.t.Helper()
	if err := s.cfg.AdvanceWatermark(base.Add(at).UnixMilli()); err != nil {
		s.t.Fatal(err)
	}
	return s
}

// run runs PerWindow over the stream (the watermark advanced to infinity at
// the end) and checks that it outputs exactly want.
func (s *stream) run(want []Aggregate, opts ...Option) beam.PipelineResult {
	s.t.Helper()
	if err := s.cfg.AdvanceWatermarkToInfinity(); err != nil {
		s.t.Fatal(err)
	}
	p, sc := beam.NewPipelineWithRoot()
	in := beam.ParDo(sc, decodeReading, teststream.Create(sc, s.cfg))
	out := PerWindow(sc, in, opts...)
	wantAny := make([]any, len(want))
	for i, w := range want {
		wantAny[i] = w
	}
	// passert compares in the global window.
	passert.Equals(sc, beam.WindowInto(sc, window.NewGlobalWindows(), out), wantAny...)
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		s.t.Fatalf("pipeline failed: %v", err)
	}
	return res
}

// stats is the expected Aggregate of values at the given offsets, in order.
func stats(device, metric string, start, end time.Duration, pane string, index int64, at []time.Duration, values []float64) Aggregate {
	a := Aggregate{
		DeviceID:    device,
		Metric:      metric,
		WindowStart: base.Add(start),
		WindowEnd:   base.Add(end),
		Count:       int64(len(values)),
		Min:         values[0],
		Max:         values[0],
		First:       values[0],
		Last:        values[len(values)-1],
		FirstTime:   base.Add(at[0]),
		LastTime:    base.Add(at[len(at)-1]),
		Pane:        pane,
		PaneIndex:   index,
	}
	for _, v := range values {
		a.Sum += v
		a.Min = min(a.Min, v)
		a.Max = max(a.Max, v)
	}
	a.Mean = a.Sum / float64(len(values))
	return a
}

func ds(ss ...float64) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = time.Duration(s * float64(time.Second))
	}
	return out
}

func vs(v ...float64) []float64 { return v }

func counter(res beam.PipelineResult, name string) int64 {
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "aggregate" && c.Name() == name {
			return c.Result()
		}
	}
	return -1
}

// A fixed window fires once, when the watermark passes its end, with the
// statistics of each device and metric; a reading that arrives before that
// (even after one from later in the window) is in it.
func TestFixedWindowsFireAtEnd(t *testing.T) {
	s := newStream(t).
		add(reading("a", 20*time.Second, 2, map[string]float64{"temp": 3, "hum": 50})).
		add(reading("a", 30*time.Second, 1, map[string]float64{"temp": 1})).
		add(reading("b", 30*time.Second, 1, map[string]float64{"temp": 7})). // same time and hash as a's, other device
		watermark(59 * time.Second).
		add(reading("a", 50*time.Second, 4, map[string]float64{"temp": 2})).
		add(reading("a", 70*time.Second, 5, map[string]float64{"temp": 5})).
		watermark(60 * time.Second).
		// Late, and no lateness allowed: dropped.
		add(reading("a", 55*time.Second, 6, map[string]float64{"temp": 100}))
	res := s.run([]Aggregate{
		stats("a", "temp", 0, time.Minute, PaneOnTime, 0, ds(20, 30, 50), vs(3, 1, 2)),
		stats("a", "hum", 0, time.Minute, PaneOnTime, 0, ds(20), vs(50)),
		stats("b", "temp", 0, time.Minute, PaneOnTime, 0, ds(30), vs(7)),
		stats("a", "temp", time.Minute, 2*time.Minute, PaneOnTime, 0, ds(70), vs(5)),
	}, Fixed(time.Minute))
	if got := counter(res, "readings"); got != 6 {
		t.Errorf("readings counter = %d, want 6", got)
	}
}

// Late data within the allowed lateness makes a late pane holding all the
// window's readings; data beyond it is dropped. (Prism fires the late pane
// when the window expires, at the watermark's step to 3m; see PerWindow.)
func TestLateData(t *testing.T) {
	s := newStream(t).
		add(reading("a", 10*time.Second, 1, map[string]float64{"temp": 1})).
		watermark(60 * time.Second).
		add(reading("a", 20*time.Second, 2, map[string]float64{"temp": 3})).
		watermark(90 * time.Second).
		// The window [0, 1m) is dropped when the watermark passes 2m.
		watermark(3 * time.Minute).
		add(reading("a", 40*time.Second, 3, map[string]float64{"temp": 9}))
	res := s.run([]Aggregate{
		stats("a", "temp", 0, time.Minute, PaneOnTime, 0, ds(10), vs(1)),
		stats("a", "temp", 0, time.Minute, PaneLate, 1, ds(10, 20), vs(1, 3)),
	}, Fixed(time.Minute), AllowedLateness(time.Minute))
	if got := counter(res, "panes_late"); got != 1 {
		t.Errorf("panes_late counter = %d, want 1", got)
	}
}

// Session windows of one device and metric merge when a reading bridges
// them.
func TestSessionsMerge(t *testing.T) {
	s := newStream(t).
		add(reading("a", 0, 1, map[string]float64{"temp": 1})).
		add(reading("a", 5*time.Second, 2, map[string]float64{"temp": 2})).
		add(reading("a", 20*time.Second, 3, map[string]float64{"temp": 3})).
		add(reading("a", 25*time.Second, 4, map[string]float64{"temp": 4})).
		add(reading("a", 12*time.Second, 5, map[string]float64{"temp": 5})).
		add(reading("a", 50*time.Second, 6, map[string]float64{"temp": 6})).
		add(reading("b", 10*time.Second, 7, map[string]float64{"temp": 7}))
	s.run([]Aggregate{
		stats("a", "temp", 0, 35*time.Second, PaneOnTime, 0, ds(0, 5, 12, 20, 25), vs(1, 2, 5, 3, 4)),
		stats("a", "temp", 50*time.Second, 60*time.Second, PaneOnTime, 0, ds(50), vs(6)),
		stats("b", "temp", 10*time.Second, 20*time.Second, PaneOnTime, 0, ds(10), vs(7)),
	}, Session(10*time.Second))
}

// A reading falls into size/period sliding windows.
func TestSlidingWindows(t *testing.T) {
	s := newStream(t).
		add(reading("a", 90*time.Second, 1, map[string]float64{"temp": 1})).
		add(reading("a", 130*time.Second, 2, map[string]float64{"temp": 2}))
	s.run([]Aggregate{
		stats("a", "temp", 0, 2*time.Minute, PaneOnTime, 0, ds(90), vs(1)),
		stats("a", "temp", time.Minute, 3*time.Minute, PaneOnTime, 0, ds(90, 130), vs(1, 2)),
		stats("a", "temp", 2*time.Minute, 4*time.Minute, PaneOnTime, 0, ds(130), vs(2)),
	}, Sliding(2*time.Minute, time.Minute))
}

// Redelivered readings (same device, event time and payload) count once,
// in the on-time pane and in a late pane a late copy makes; readings that
// differ in time or payload count.
func TestDuplicatesRemoved(t *testing.T) {
	r := reading("a", 10*time.Second, 1, map[string]float64{"temp": 1, "hum": 40})
	s := newStream(t).
		add(r, r).
		add(reading("a", 10*time.Second, 2, map[string]float64{"temp": 2})). // other payload
		add(reading("a", 20*time.Second, 1, map[string]float64{"temp": 1})). // other time
		watermark(time.Minute).
		add(r) // a late copy
	s.run([]Aggregate{
		stats("a", "temp", 0, time.Minute, PaneOnTime, 0, ds(10, 10, 20), vs(1, 2, 1)),
		stats("a", "hum", 0, time.Minute, PaneOnTime, 0, ds(10), vs(40)),
		stats("a", "temp", 0, time.Minute, PaneLate, 1, ds(10, 10, 20), vs(1, 2, 1)),
		stats("a", "hum", 0, time.Minute, PaneLate, 1, ds(10), vs(40)),
	}, Fixed(time.Minute), AllowedLateness(time.Minute))
}
