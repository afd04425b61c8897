package aggregate

import (
	"context"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window/trigger"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
)

func init() {
	register.DoFn3x0[int64, samples, func(beam.EventTime, string, sample)](&perDeviceFn{})
	register.Emitter3[beam.EventTime, string, sample]()
	register.DoFn6x0[context.Context, beam.PaneInfo, beam.Window, string, func(*sample) bool, func(Aggregate)](&deviceStatsFn{})
	register.Iter1[sample]()
	register.DoFn6x0[context.Context, beam.PaneInfo, beam.Window, int64, func(*samples) bool, func(Aggregate)](&shardStatsFn{})
	register.Iter1[samples]()
	register.Emitter1[Aggregate]()
}

// Beam metrics of PerWindow, in namespace "aggregate".
var (
	readingsIn      = beam.NewCounter("aggregate", "readings")
	noMetrics       = beam.NewCounter("aggregate", "readings_without_metrics")
	valuesIn        = beam.NewCounter("aggregate", "values")
	nonFiniteValues = beam.NewCounter("aggregate", "non_finite_values")
	panesOnTime     = beam.NewCounter("aggregate", "panes_on_time")
	panesLate       = beam.NewCounter("aggregate", "panes_late")
	// duplicates counts the copies dropped, once per pane that holds them
	// (a late pane recounts the on-time pane's).
	duplicates = beam.NewCounter("aggregate", "duplicates")
)

// PerWindow windows readings in event time and returns a
// PCollection<Aggregate>: for each device, metric and window, the count, min,
// max, sum, mean, and first and last value (by event time) of the metric.
//
// Windows are assigned by the readings' element timestamps, which
// telemetry.Parse sets to their EventTime. Options choose fixed (the default,
// one minute), sliding or session windows and the allowed lateness. A window
// fires once when the watermark passes its end (Pane PaneOnTime, PaneIndex
// 0), and again for each late reading within the allowed lateness (Pane
// PaneLate, PaneIndex 1, 2, ...); panes accumulate, so each row holds all the
// window's readings so far and a table keeps the row with the highest
// PaneIndex.
//
// Readings that come too late, after the watermark has passed the end of
// all their windows plus the allowed lateness, are dropped and counted in
// "aggregate/readings_too_late" (PerWindowWithLate also returns them). The
// runner would drop them silently; to see them, PerWindow keys the readings
// by LateShards shards of device ids (one more shuffle) and tracks, per
// shard, the latest window expiry the watermark has reached (an event-time
// timer per window expiry, set when the shard sees a reading of that
// window; the timers hold no watermark, so panes are not delayed). A
// reading is caught when its windows expired no later than that. Not
// caught, and dropped silently by the runner as before: a too-late reading
// whose shard has seen no reading of a window that has expired since the
// reading's own (a shard that went quiet: more shards make this likelier);
// a reading of which some sliding windows expired but not all (it still
// counts in the open ones); a session reading whose own window expired but
// would have merged into an open session (the runner drops it too); and
// session windows unless the LateShards option is given (see there).
//
// On prism (v2.77.0) late panes come later and fewer: prism holds late
// readings until the window expires (the watermark passes its end plus the
// allowed lateness) and then fires one late pane with all of them; with an
// allowed lateness it also fires that closing late pane, unchanged, for
// keys that had no late data. Rows of merged session windows carry no pane
// on prism and come out as PaneOnTime, PaneIndex 0. Keeping the row with
// the highest PaneIndex is right on both runners except for merged sessions
// on prism, where the last row written wins.
//
// Within a window, readings of a device with the same EventTime and
// PayloadHash count once: an at-least-once source redelivers messages, and
// the copies must not inflate the statistics. This does not catch:
//   - copies that fall into different windows: they cannot, as long as
//     EventTime comes from the payload, but readings whose EventTime is the
//     receive time (TimeSource "received") get a new time on redelivery and
//     are counted again;
//   - a device that resends a measurement as a new message with a new
//     timestamp or a changed payload (a different hash);
//   - copies of a message that arrive after the window has been dropped
//     (beyond the allowed lateness): they are dropped with it.
//
// Conversely, two different messages of a device with the same event time
// and the same payload bytes are taken for copies and count once.
//
// Fixed and sliding windows are grouped per shard of devices (the LateShards
// shards) and window, in batches of the readings' metric values that the
// too-late check made (the runner's work is per element, and a batch holds
// a shard's readings of a bundle), and the statistics are computed per
// device and metric from the group. Sessions depend on each device's
// readings, so they are grouped per device, one element per reading.
// Memory: panes accumulate, so the runner keeps every reading's metric
// values (copies included, about 40 bytes plus 20 per metric) in a window
// until the window expires: its end plus the allowed lateness, and the
// firing of a shard's window holds them in a worker's memory. Long windows
// or long lateness over chatty devices cost that much state; each firing
// reads all of it.
//
// Non-finite values (NaN, ±Inf) are skipped and counted in the
// "aggregate/non_finite_values" metric. PerWindow panics when an option is
// invalid; TryPerWindow returns the error instead.
func PerWindow(s beam.Scope, readings beam.PCollection, opts ...Option) beam.PCollection {
	out, err := TryPerWindow(s, readings, opts...)
	if err != nil {
		panic(err)
	}
	return out
}

// TryPerWindow is PerWindow returning an error instead of panicking.
func TryPerWindow(s beam.Scope, readings beam.PCollection, opts ...Option) (beam.PCollection, error) {
	out, _, err := TryPerWindowWithLate(s, readings, opts...)
	return out, err
}

// perWindow is PerWindowWithLate with a valid configuration.
func perWindow(s beam.Scope, readings beam.PCollection, cfg config) (aggregates, tooLate beam.PCollection, err error) {
	fail := func(err error) (beam.PCollection, beam.PCollection, error) {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	onTime, tooLate, err := dropTooLate(s.Scope("DropTooLate"), readings, cfg)
	if err != nil {
		return fail(err)
	}
	// A GroupByKey and a DoFn rather than CombinePerKey: the Go SDK's
	// combine steps drop the pane (v2.77.0), and the rows need it.
	group := func(keyed beam.PCollection, stats any) (beam.PCollection, error) {
		windowed, err := beam.TryWindowInto(s, cfg.windowFn(), keyed,
			beam.Trigger(trigger.AfterEndOfWindow().LateFiring(trigger.Always())),
			beam.AllowedLateness(cfg.AllowedLateness),
			beam.PanesAccumulate())
		if err != nil {
			return beam.PCollection{}, err
		}
		grouped, err := beam.TryGroupByKey(s, windowed)
		if err != nil {
			return beam.PCollection{}, err
		}
		out, err := beam.TryParDo(s, stats, grouped)
		if err != nil {
			return beam.PCollection{}, err
		}
		return out[0], nil
	}
	if cfg.Kind != kindSession {
		out, err := group(onTime, &shardStatsFn{})
		if err != nil {
			return fail(err)
		}
		return out, tooLate, nil
	}
	perDevice, err := beam.TryParDo(s, &perDeviceFn{}, onTime)
	if err != nil {
		return fail(err)
	}
	out, err := group(perDevice[0], &deviceStatsFn{})
	if err != nil {
		return fail(err)
	}
	return out, tooLate, nil
}

func (c config) windowFn() *window.Fn {
	switch c.Kind {
	case kindSliding:
		return window.NewSlidingWindows(c.Period, c.Size)
	case kindSession:
		return window.NewSessions(c.Gap)
	default:
		return window.NewFixedWindows(c.Size)
	}
}

// sampleOf returns a reading's finite metric values as a sample, and false
// when it has none.
func sampleOf(ctx context.Context, r telemetry.Reading) (sample, bool) {
	if len(r.Metrics) == 0 {
		noMetrics.Inc(ctx, 1)
		return sample{}, false
	}
	values := make([]metricValue, 0, len(r.Metrics))
	for name, v := range r.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			nonFiniteValues.Inc(ctx, 1)
			continue
		}
		values = append(values, metricValue{Metric: name, Value: v})
	}
	if len(values) == 0 {
		return sample{}, false
	}
	valuesIn.Inc(ctx, int64(len(values)))
	return sample{Device: r.DeviceID, Time: r.EventTime.UnixNano(), Hash: r.PayloadHash, Values: values}, true
}

// perDeviceFn keys each sample of a batch by its device, at its own event
// time: session windows are assigned per sample.
type perDeviceFn struct{}

func (*perDeviceFn) ProcessElement(_ int64, b samples, emit func(beam.EventTime, string, sample)) {
	for _, smp := range b.List {
		emit(mtime.FromTime(time.Unix(0, smp.Time)), smp.Device, smp)
	}
}

// deviceStatsFn computes the statistics of one device's samples in a
// window (sessions).
type deviceStatsFn struct{}

func (*deviceStatsFn) ProcessElement(ctx context.Context, pn beam.PaneInfo, w beam.Window, device string, iter func(*sample) bool, emit func(Aggregate)) {
	// Copy each sample: the iterator may reuse it.
	var all []sample
	var smp sample
	for iter(&smp) {
		all = append(all, smp)
		smp = sample{}
	}
	firingOf(pn, w).emit(ctx, device, all, emit)
}

// shardStatsFn computes the statistics of each device of a shard in a
// window (fixed and sliding windows), devices in order.
type shardStatsFn struct{}

func (*shardStatsFn) ProcessElement(ctx context.Context, pn beam.PaneInfo, w beam.Window, _ int64, iter func(*samples) bool, emit func(Aggregate)) {
	byDevice := map[string][]sample{}
	var b samples
	for iter(&b) {
		for _, smp := range b.List {
			byDevice[smp.Device] = append(byDevice[smp.Device], smp)
		}
		b = samples{}
	}
	f := firingOf(pn, w)
	for _, device := range slices.Sorted(maps.Keys(byDevice)) {
		f.emit(ctx, device, byDevice[device], emit)
	}
}

// firing is a window's bounds and pane, as its rows carry them.
type firing struct {
	start, end time.Time
	pane       string
	index      int64
	panes      beam.Counter
}

func firingOf(pn beam.PaneInfo, w beam.Window) firing {
	f := firing{pane: PaneOnTime, index: pn.Index, panes: panesOnTime}
	if iw, ok := w.(window.IntervalWindow); ok {
		f.start, f.end = iw.Start.ToTime().UTC(), iw.End.ToTime().UTC()
	}
	// PerWindow sets no early firings, so an early pane is a runner that did
	// not say: prism (v2.77.0) gives merged session windows a zero pane.
	if pn.Timing == typex.PaneLate {
		f.pane, f.panes = PaneLate, panesLate
	}
	return f
}

// emit computes the statistics of a device's samples (distinct readings of
// each metric) and emits them with the window and pane.
func (f firing) emit(ctx context.Context, device string, all []sample, emit func(Aggregate)) {
	stats, copies := statsOf(all)
	if copies > 0 {
		duplicates.Inc(ctx, copies)
	}
	for _, a := range stats {
		a.DeviceID = device
		a.WindowStart, a.WindowEnd = f.start, f.end
		a.Pane, a.PaneIndex = f.pane, f.index
		f.panes.Inc(ctx, 1)
		emit(a)
	}
}
