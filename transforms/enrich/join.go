// Package enrich joins a device registry (device id -> site, model, owner,
// ...) onto windowed aggregates, as a side input that a streaming job can
// refresh on a period.
package enrich

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Enriched)(nil)).Elem())
	register.DoFn4x1[context.Context, beam.EventTime, []byte, func(Registry), error](&loadFn{})
	register.DoFn6x0[context.Context, beam.Window, aggregate.Aggregate, func(*Registry) bool, func(*Registry) bool, func(Enriched)](&joinFn{})
	register.Emitter1[Registry]()
	register.Emitter1[Enriched]()
	register.Iter1[Registry]()
}

// Beam metrics of Join, in namespace "enrich".
var (
	knownCount   = beam.NewCounter("enrich", "known_devices")
	unknownCount = beam.NewCounter("enrich", "unknown_devices")
	loadCount    = beam.NewCounter("enrich", "registry_loads")
	loadErrors   = beam.NewCounter("enrich", "registry_load_errors")
)

// Enriched is an aggregate with the registry attributes of its device.
type Enriched struct {
	Aggregate aggregate.Aggregate
	// Device holds the device's attributes; it is empty when Known is
	// false.
	Device map[string]string
	// Known is false for a device the registry does not list: the
	// aggregate is kept, flagged (e.g. a BOOL column device_known in a
	// table) and counted in enrich/unknown_devices.
	Known bool
}

// Join enriches aggregates, a windowed PCollection<aggregate.Aggregate>
// (aggregate.PerWindow's output), with the registry at source (see Load
// for the formats: a JSON lines or CSV file, or bq://PROJECT:DATASET.TABLE)
// and returns a PCollection<Enriched> in the same windows. The registry
// is a side input: every worker reads a whole load of it. Each element
// says whether its device was found (Known); none is dropped.
//
// The registry is loaded once when the job starts (a failure to load it,
// such as a malformed file, fails the job). With Refresh(every) it is also
// reloaded on that period, driven by a periodic impulse (which ends when the process drains its
// sources, see mqttio.Drain) aligned to
// multiples of every since the Unix epoch, and the loads are windowed in
// fixed windows of that size: a slowly updating side input. Which load a
// window sees:
//   - an aggregate of a window ending at E (its timestamp E-1ms) sees the
//     load of the refresh tick at E-1ms rounded down to a multiple of
//     every, i.e. the registry as it was at that tick;
//   - a window ending before the first tick (old or replayed data) or whose
//     tick failed to load (counted in enrich/registry_load_errors, logged)
//     sees the load made at start, not the previous reload.
//
// A side input window is ready when the watermark of the reloads passes
// its end, on prism and on Dataflow, and that watermark follows the worker
// clock; so an aggregate whose event time is about the wall time waits for
// the end of its refresh period (up to every) before it is enriched, and
// one from a device clock ahead of the workers' waits longer: choose every
// with that delay in mind. (A global-window side input with a processing-
// time trigger, Beam's other pattern, would not wait, but prism rejects
// triggered side inputs over unbounded input.) On prism a step with side
// inputs also runs only when the watermark of its main input advances, and
// after a GroupByKey with an allowed lateness that watermark trails the
// window ends by the lateness: there aggregates are enriched only up to the
// allowed lateness after their window closed. Dataflow does not wait.
//
// Join panics when an option or the source is invalid; TryJoin returns the
// error instead. The source is checked for its form only: the registry is
// read when the job runs.
func Join(s beam.Scope, aggregates beam.PCollection, source string, opts ...Option) beam.PCollection {
	out, err := TryJoin(s, aggregates, source, opts...)
	if err != nil {
		panic(err)
	}
	return out
}

// TryJoin is Join returning an error instead of panicking.
func TryJoin(s beam.Scope, aggregates beam.PCollection, source string, opts ...Option) (beam.PCollection, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return beam.PCollection{}, err
	}
	if err := checkSource(source); err != nil {
		return beam.PCollection{}, fmt.Errorf("enrich.Join: source: %w", err)
	}
	s = s.Scope("enrich.Join")
	initial, err := beam.TryParDo(s.Scope("LoadAtStart"), &loadFn{Source: source, AtStart: true}, beam.Impulse(s))
	if err != nil {
		return beam.PCollection{}, fmt.Errorf("enrich.Join: %w", err)
	}
	updates := initial[0]
	if cfg.Every > 0 {
		if updates, err = reloads(s.Scope("Refresh"), source, cfg); err != nil {
			return beam.PCollection{}, fmt.Errorf("enrich.Join: %w", err)
		}
	}
	return join(s, aggregates, initial[0], updates)
}

// reloads loads the registry at every tick of cfg's refresh, each load in
// the fixed window of its tick.
func reloads(s beam.Scope, source string, cfg config) (beam.PCollection, error) {
	from := cfg.From
	if from.IsZero() {
		from = time.Now()
	}
	period := cfg.Every.Milliseconds()
	start := time.UnixMilli(from.UnixMilli() / period * period)
	end := cfg.Until
	if end.IsZero() {
		end = mtime.MaxTimestamp.ToTime()
	}
	out, err := beam.TryParDo(s, &loadFn{Source: source}, ticks(s, start, end, cfg.Every))
	if err != nil {
		return beam.PCollection{}, err
	}
	return out[0], nil
}

// join enriches aggregates with the newest Registry of updates in the
// side-input window of each aggregate, or else with the newest of initial
// (a PCollection<Registry> in the global window).
func join(s beam.Scope, aggregates, initial, updates beam.PCollection) (beam.PCollection, error) {
	out, err := beam.TryParDo(s, &joinFn{}, aggregates,
		beam.SideInput{Input: initial}, beam.SideInput{Input: updates})
	if err != nil {
		return beam.PCollection{}, fmt.Errorf("enrich.Join: %w", err)
	}
	return out[0], nil
}

// loadFn loads the registry at Source for each tick. The load at start
// fails the bundle on error; a reload is skipped, counted and logged.
type loadFn struct {
	Source  string
	AtStart bool
}

func (fn *loadFn) ProcessElement(ctx context.Context, tick beam.EventTime, _ []byte, emit func(Registry)) error {
	reg, err := Load(ctx, fn.Source)
	if err != nil && fn.AtStart {
		return err
	}
	if err != nil {
		loadErrors.Inc(ctx, 1)
		log.Warnf(ctx, "enrich: refresh at %v failed, windows of this period use the registry loaded at start: %v", tick.ToTime().UTC(), err)
		return nil
	}
	reg.Loaded = tick.ToTime().UTC()
	if fn.AtStart {
		reg.Loaded = time.Now().UTC()
	}
	loadCount.Inc(ctx, 1)
	emit(reg)
	return nil
}

// joinFn looks each aggregate's device up in the registry of its window.
// It decodes the registry once per run of elements of one window: a side
// input window is complete when it is first read (default trigger), so
// its registry does not change afterwards.
type joinFn struct {
	window beam.Window
	reg    map[string]map[string]string
}

func (fn *joinFn) ProcessElement(ctx context.Context, w beam.Window, a aggregate.Aggregate, initial, updates func(*Registry) bool, emit func(Enriched)) {
	if fn.window == nil || !fn.window.Equals(w) {
		reg, ok := newest(updates)
		if !ok {
			reg, _ = newest(initial)
		}
		fn.window, fn.reg = w, reg.Devices
	}
	attrs, known := fn.reg[a.DeviceID]
	// A copy: fused downstream DoFns get the map itself, not a decoded one.
	attrs = maps.Clone(attrs)
	if known {
		knownCount.Inc(ctx, 1)
	} else {
		unknownCount.Inc(ctx, 1)
		attrs = map[string]string{}
	}
	emit(Enriched{Aggregate: a, Device: attrs, Known: known})
}

// newest returns the registry of regs with the latest Loaded time.
func newest(regs func(*Registry) bool) (Registry, bool) {
	var best, r Registry
	found := false
	for regs(&r) {
		if !found || r.Loaded.After(best.Loaded) {
			best, found = r, true
		}
		r = Registry{}
	}
	return best, found
}
