package aggregate

import (
	"context"
	"fmt"
	"hash/fnv"
	"reflect"
	"strconv"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/mqttbeam/mqttbeam/internal/wire"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
)

func init() {
	register.DoFn3x0[context.Context, telemetry.Reading, func(beam.EventTime, int64, batch)](&shardFn{})
	register.DoFn7x1[context.Context, state.Provider, timers.Provider, int64, batch,
		func(beam.EventTime, int64, samples), func(beam.EventTime, telemetry.Reading), error](&tooLateFn{})
	register.DoFn4x0[context.Context, telemetry.Reading, func(beam.EventTime, int64, samples), func(beam.EventTime, telemetry.Reading)](&keepAllFn{})
	register.Emitter2[beam.EventTime, telemetry.Reading]()
	register.Emitter3[beam.EventTime, int64, batch]()
	register.Emitter3[beam.EventTime, int64, samples]()
	register.Function1x2(encodeBatch)
	register.Function1x2(decodeBatch)
	beam.RegisterCoder(reflect.TypeOf((*batch)(nil)).Elem(), encodeBatch, decodeBatch)
}

// readingsTooLate counts the readings that came after their windows
// expired: the watermark had passed their end plus the allowed lateness.
var readingsTooLate = beam.NewCounter("aggregate", "readings_too_late")

// PerWindowWithLate is PerWindow that also returns the readings it dropped
// because they came too late (PCollection<telemetry.Reading>, in the
// global window, at their event times), e.g. for a dead-letter table.
// PerWindowWithLate panics when an option is invalid;
// TryPerWindowWithLate returns the error instead.
func PerWindowWithLate(s beam.Scope, readings beam.PCollection, opts ...Option) (aggregates, tooLate beam.PCollection) {
	aggregates, tooLate, err := TryPerWindowWithLate(s, readings, opts...)
	if err != nil {
		panic(err)
	}
	return aggregates, tooLate
}

// TryPerWindowWithLate is PerWindowWithLate returning an error instead of
// panicking.
func TryPerWindowWithLate(s beam.Scope, readings beam.PCollection, opts ...Option) (aggregates, tooLate beam.PCollection, err error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	aggregates, tooLate, err = perWindow(s.Scope("aggregate.PerWindow"), readings, cfg)
	if err != nil {
		return beam.PCollection{}, beam.PCollection{}, fmt.Errorf("aggregate.PerWindow: %w", err)
	}
	return aggregates, tooLate, nil
}

// dropTooLate splits readings into the samples of those whose windows may
// still be open and the readings that came too late (see PerWindow for what
// it catches). The samples come keyed by shard (a hash of the device id) in
// batches whose samples fall into the same windows (PCollection<KV<int64,
// samples>>, in the global window, at the earliest time in the batch).
//
// Beam gives a DoFn no access to the watermark, but an event-time timer
// tells when it has passed a time. The readings are keyed by a hash of
// their device id into cfg.Shards shards; for each shard a stateful DoFn
// (in the global window) sets timers at the expiries of the windows it sees
// (window end + allowed lateness, one timer per expiry, holding no
// watermark: the earliest and the latest window of each reading) and, when
// one fires, records the latest expiry passed. A reading all of whose
// windows expired no later than that is too late.
func dropTooLate(s beam.Scope, readings beam.PCollection, cfg config) (onTime, tooLate beam.PCollection, err error) {
	global, err := beam.TryWindowInto(s, window.NewGlobalWindows(), readings)
	if err != nil {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	if cfg.Kind == kindSession && cfg.Shards == 0 {
		out, err := beam.TryParDo(s, &keepAllFn{}, global)
		if err != nil {
			return beam.PCollection{}, beam.PCollection{}, err
		}
		return out[0], out[1], nil
	}
	sharded, err := beam.TryParDo(s, &shardFn{Shards: cfg.shards()}, global)
	if err != nil {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	out, err := beam.TryParDo(s, &tooLateFn{Windows: cfg,
		Expired: state.MakeValueState[int64]("expired"),
		Expiry:  timers.InEventTime("expiry")}, sharded[0])
	if err != nil {
		return beam.PCollection{}, beam.PCollection{}, err
	}
	return out[0], out[1], nil
}

// shardFn keys readings by a hash of their device id, modulo Shards, and
// sends each shard's readings of a bundle as one batch: the runner's cost of
// the shuffle and of the stateful step is per element, and a bundle of the
// source holds thousands of readings.
type shardFn struct {
	Shards int

	batches map[int64]*batch
}

// batch is readings of one shard, at the earliest of their event times.
type batch struct {
	Readings []telemetry.Reading
}

func (fn *shardFn) StartBundle(_ context.Context, _ func(beam.EventTime, int64, batch)) {
	fn.batches = map[int64]*batch{}
}

func (fn *shardFn) ProcessElement(ctx context.Context, r telemetry.Reading, _ func(beam.EventTime, int64, batch)) {
	readingsIn.Inc(ctx, 1)
	h := fnv.New32a()
	h.Write([]byte(r.DeviceID))
	shard := int64(h.Sum32() % uint32(fn.Shards))
	b := fn.batches[shard]
	if b == nil {
		b = &batch{}
		fn.batches[shard] = b
	}
	b.Readings = append(b.Readings, r)
}

// FinishBundle emits the batches, each at its earliest event time so that
// it holds the watermark no later than its readings would.
func (fn *shardFn) FinishBundle(_ context.Context, emit func(beam.EventTime, int64, batch)) {
	for shard, b := range fn.batches {
		earliest := b.Readings[0].EventTime
		for _, r := range b.Readings[1:] {
			if r.EventTime.Before(earliest) {
				earliest = r.EventTime
			}
		}
		emit(mtime.FromTime(earliest), shard, *b)
	}
	fn.batches = nil
}

// encodeBatch is batch's Beam coder: its readings in telemetry's coder.
func encodeBatch(b batch) ([]byte, error) {
	out := wire.AppendUvarint(nil, uint64(len(b.Readings)))
	for _, r := range b.Readings {
		enc, err := telemetry.EncodeReading(r)
		if err != nil {
			return nil, err
		}
		out = wire.AppendBytes(out, enc)
	}
	return out, nil
}

// decodeBatch is the inverse of encodeBatch.
func decodeBatch(p []byte) (batch, error) {
	r := wire.NewReader(p)
	b := batch{Readings: make([]telemetry.Reading, r.Count())}
	for i := range b.Readings {
		reading, err := telemetry.DecodeReading(r.Bytes())
		if err != nil {
			return batch{}, fmt.Errorf("aggregate: decoding reading %d of a batch: %w", i, err)
		}
		b.Readings[i] = reading
	}
	if err := r.Err(); err != nil {
		return batch{}, fmt.Errorf("aggregate: decoding a batch: %w", err)
	}
	return b, nil
}

// keepAllFn passes every reading on as a sample and diverts none: the
// too-late filter of session windows without LateShards.
type keepAllFn struct{}

func (*keepAllFn) ProcessElement(ctx context.Context, r telemetry.Reading, emit func(beam.EventTime, int64, samples), _ func(beam.EventTime, telemetry.Reading)) {
	readingsIn.Inc(ctx, 1)
	if smp, ok := sampleOf(ctx, r); ok {
		emit(mtime.FromTime(r.EventTime), 0, samples{List: []sample{smp}})
	}
}

// tooLateFn passes on, as samples, the readings of one shard whose windows
// may still be open and diverts the others.
type tooLateFn struct {
	Windows config
	// Expired is the latest window expiry (Unix milliseconds, window end
	// plus allowed lateness) that the watermark has reached.
	Expired state.Value[int64]
	// Expiry fires at a window's expiry; its tag is that time.
	Expiry timers.EventTime

	set map[timerKey]bool // the timers this bundle has set
	// expired caches Expired per shard for the bundle: reading state is a
	// round trip to the runner, and a bundle owns its keys' state, so one
	// read per shard and bundle is enough.
	expired map[int64]cachedExpiry
}

type cachedExpiry struct {
	at int64
	ok bool
}

type timerKey struct {
	shard, at int64
}

// StartBundle forgets the timers set in the previous bundle (the Go SDK
// wants the emitters here too).
func (fn *tooLateFn) StartBundle(_ func(beam.EventTime, int64, samples), _ func(beam.EventTime, telemetry.Reading)) {
	fn.set = map[timerKey]bool{}
	fn.expired = map[int64]cachedExpiry{}
}

// expiredOf is the shard's Expired state, read once per bundle.
func (fn *tooLateFn) expiredOf(sp state.Provider, shard int64) (int64, bool, error) {
	if c, hit := fn.expired[shard]; hit {
		return c.at, c.ok, nil
	}
	at, ok, err := fn.Expired.Read(sp)
	if err != nil {
		return 0, false, fmt.Errorf("reading the expiry of shard %d: %w", shard, err)
	}
	fn.expired[shard] = cachedExpiry{at, ok}
	return at, ok, nil
}

// ProcessElement splits a batch of one shard. It emits the samples of the
// readings that may still count in batches, one for each set of windows
// (the readings' slice, see config.sliceOf), at the earliest event time in
// it: that time falls into the same windows as every sample of the batch.
func (fn *tooLateFn) ProcessElement(ctx context.Context, sp state.Provider, tp timers.Provider, shard int64, b batch, emit func(beam.EventTime, int64, samples), tooLate func(beam.EventTime, telemetry.Reading)) error {
	expired, ok, err := fn.expiredOf(sp, shard)
	if err != nil {
		return err
	}
	bySlice := map[int64]*timedSamples{}
	for _, r := range b.Readings {
		ts := mtime.FromTime(r.EventTime)
		first, last := fn.Windows.expiries(int64(ts))
		if ok && last <= expired {
			readingsTooLate.Inc(ctx, 1)
			tooLate(ts, r)
			continue
		}
		// The earliest expiry tells soonest that a window closed; the latest
		// is what a later reading of these windows is compared with.
		fn.setExpiry(tp, shard, first)
		fn.setExpiry(tp, shard, last)
		smp, keep := sampleOf(ctx, r)
		if !keep {
			continue
		}
		slice := fn.Windows.sliceOf(int64(ts))
		t := bySlice[slice]
		if t == nil {
			t = &timedSamples{at: ts}
			bySlice[slice] = t
		}
		t.at = min(t.at, ts)
		t.List = append(t.List, smp)
	}
	for _, t := range bySlice {
		emit(t.at, shard, t.samples)
	}
	return nil
}

// timedSamples is samples with the timestamp to emit them at.
type timedSamples struct {
	samples
	at beam.EventTime
}

// setExpiry sets the timer of a window expiry, once per bundle.
func (fn *tooLateFn) setExpiry(tp timers.Provider, shard, at int64) {
	k := timerKey{shard, at}
	if fn.set[k] {
		return
	}
	fn.set[k] = true
	fn.Expiry.Set(tp, mtime.Time(at).ToTime(),
		timers.WithTag(strconv.FormatInt(at, 10)), timers.WithNoOutputTimestamp())
}

// OnTimer records that the watermark has reached the expiry in the tag.
func (fn *tooLateFn) OnTimer(ctx context.Context, sp state.Provider, tp timers.Provider, shard int64, tc timers.Context, _ func(beam.EventTime, int64, samples), _ func(beam.EventTime, telemetry.Reading)) error {
	at, err := strconv.ParseInt(tc.Tag, 10, 64)
	if err != nil {
		return fmt.Errorf("expiry timer of shard %d: bad tag %q: %w", shard, tc.Tag, err)
	}
	if fn.expired == nil { // a bundle of timers only
		fn.expired = map[int64]cachedExpiry{}
	}
	expired, ok, err := fn.expiredOf(sp, shard)
	if err != nil {
		return err
	}
	if ok && expired >= at {
		return nil
	}
	fn.expired[shard] = cachedExpiry{at, true}
	return fn.Expired.Write(sp, at)
}

// expiries returns the earliest and the latest expiry (Unix milliseconds)
// of the windows that hold an element at ts: the window's end plus the
// allowed lateness. The runner drops the element from a window once the
// watermark has passed the window's expiry minus 1ms (its last instant).
// A session window is taken as the reading's own, before merging.
func (c config) expiries(ts int64) (first, last int64) {
	lateness := c.AllowedLateness.Milliseconds()
	switch c.Kind {
	case kindSliding:
		size, period := c.Size.Milliseconds(), c.Period.Milliseconds()
		lastStart := floorDiv(ts, period) * period
		firstStart := floorDiv(ts-size, period)*period + period
		return firstStart + size + lateness, lastStart + size + lateness
	case kindSession:
		end := ts + c.Gap.Milliseconds()
		return end + lateness, end + lateness
	default:
		size := c.Size.Milliseconds()
		end := floorDiv(ts, size)*size + size
		return end + lateness, end + lateness
	}
}

// sliceOf returns the slice of event time (Unix milliseconds) that ts falls
// into: times in one slice fall into the same windows. A fixed window is a
// slice; sliding windows are cut into slices of gcd(size, period), since
// every window starts and ends on that grid. Sessions have no such slices
// (they depend on the readings): all times are in slice 0, and the samples
// are emitted one by one at their own times before windowing.
func (c config) sliceOf(ts int64) int64 {
	switch c.Kind {
	case kindSliding:
		return floorDiv(ts, gcd(c.Size, c.Period).Milliseconds())
	case kindSession:
		return 0
	default:
		return floorDiv(ts, c.Size.Milliseconds())
	}
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
