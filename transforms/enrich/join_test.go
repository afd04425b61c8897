package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
	"github.com/mqttbeam/mqttbeam/transforms/rules"
)

func init() {
	register.Function1x2(atWindowEnd)
	register.Function1x1(describe)
	register.Function3x1(splitEvent)
	register.Function1x1(commandTopic)
	register.Function1x1(ruleInput)
	register.Emitter1[aggregate.Aggregate]()
}

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

// base is the start of the tests' event time, aligned to the hour.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// agg is an aggregate of device's temperature in the minute window starting
// at base+start.
func agg(device string, start time.Duration) aggregate.Aggregate {
	return aggregate.Aggregate{DeviceID: device, Metric: "temperature",
		WindowStart: base.Add(start), WindowEnd: base.Add(start + time.Minute),
		Count: 1, Min: 20, Max: 20, Sum: 20, Mean: 20, First: 20, Last: 20, Pane: aggregate.PaneOnTime}
}

// atWindowEnd stamps an aggregate as aggregate.PerWindow does: the last
// instant of its window.
func atWindowEnd(a aggregate.Aggregate) (beam.EventTime, aggregate.Aggregate) {
	return mtime.FromTime(a.WindowEnd).Subtract(1), a
}

// windowed makes a PCollection of aggregates in their one-minute windows.
func windowed(s beam.Scope, aggs beam.PCollection) beam.PCollection {
	return beam.WindowInto(s, window.NewFixedWindows(time.Minute), beam.ParDo(s, atWindowEnd, aggs))
}

// describe prints what a user checks of an Enriched: the device, the
// window, and the attributes (sorted) or "unknown".
func describe(e Enriched) string {
	s := fmt.Sprintf("%s %s", e.Aggregate.DeviceID, e.Aggregate.WindowStart.Sub(base))
	if !e.Known {
		if len(e.Device) != 0 {
			return s + fmt.Sprintf(" unknown with attributes %v", e.Device)
		}
		return s + " unknown"
	}
	var kv []string
	for k, v := range e.Device {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return s + " " + strings.Join(kv, ",")
}

// assertDescribed checks that enriched, described, is exactly want.
func assertDescribed(s beam.Scope, enriched beam.PCollection, want ...string) {
	got := beam.ParDo(s, describe, beam.WindowInto(s, window.NewGlobalWindows(), enriched))
	wantAny := make([]any, len(want))
	for i, w := range want {
		wantAny[i] = w
	}
	passert.Equals(s, got, wantAny...)
}

// counter sums the enrich counter name over the steps of a pipeline.
func counter(res beam.PipelineResult, name string) int64 {
	var n int64
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == "enrich" && c.Key.Name == name {
			n += c.Committed
		}
	}
	return n
}

func TestJoinKnownAndUnknownDevices(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	aggs := windowed(s, beam.Create(s, agg("sensor-1", 0), agg("sensor-2", 0), agg("intruder", time.Minute)))
	out := Join(s, aggs, filepath.Join(registryDir, "devices.csv"))
	assertDescribed(s, out,
		"sensor-1 0s model=th-200,owner=facilities,site=berlin",
		"sensor-2 0s model=th-100,owner=labs,site=paris",
		"intruder 1m0s unknown")
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("pipeline failed: %v", err)
	}
	if got := counter(res, "unknown_devices"); got != 1 {
		t.Errorf("enrich/unknown_devices = %d, want 1", got)
	}
	if got := counter(res, "known_devices"); got != 2 {
		t.Errorf("enrich/known_devices = %d, want 2", got)
	}
}

func TestJoinFailsOnBadRegistry(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Join(s, windowed(s, beam.Create(s, agg("sensor-1", 0))), filepath.Join(t.TempDir(), "missing.jsonl"))
	if _, err := ptest.RunWithMetrics(p); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("pipeline error = %v, want one naming missing.jsonl", err)
	}
}

func TestTryJoinRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name    string
		source  string
		opts    []Option
		wantErr string
	}{
		{"source", "devices.txt", nil, `enrich.Join: source: devices.txt: unknown registry format ".txt"`},
		{"table", "bq://project.dataset.table", nil, "is not a BigQuery table bq://PROJECT:DATASET.TABLE"},
		{"refresh zero", "d.csv", []Option{Refresh(0)}, "enrich: Refresh: period must be positive"},
		{"refresh sub-ms", "d.csv", []Option{Refresh(time.Microsecond)}, "enrich: Refresh: period 1µs is not a whole number of milliseconds"},
		{"until zero", "d.csv", []Option{Refresh(time.Second), RefreshUntil(time.Time{})}, "enrich: RefreshUntil: end is the zero time"},
		{"until alone", "d.csv", []Option{RefreshUntil(base)}, "enrich: RefreshUntil: needs Refresh"},
		{"nil option", "d.csv", []Option{nil}, "enrich: nil Option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, s := beam.NewPipelineWithRoot()
			_, err := TryJoin(s, windowed(s, beam.Create(s, agg("sensor-1", 0))), tt.source, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("TryJoin error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// event is an element of the refresh test's TestStream: a registry load or
// an aggregate.
type event struct {
	Registry  *Registry            `json:",omitempty"`
	Aggregate *aggregate.Aggregate `json:",omitempty"`
}

func splitEvent(s string, registries func(Registry), aggs func(aggregate.Aggregate)) error {
	var e event
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return err
	}
	if e.Registry != nil {
		registries(*e.Registry)
	}
	if e.Aggregate != nil {
		aggs(*e.Aggregate)
	}
	return nil
}

// TestRefreshChangesEnrichmentMidStream feeds the join the loads that
// Refresh would make (every two minutes, from two versions of a registry
// file) and aggregates, interleaved on one TestStream, and checks that
// each window is enriched with the load of its refresh period, or with the
// load at start before the first one.
func TestRefreshChangesEnrichmentMidStream(t *testing.T) {
	const every = 2 * time.Minute
	load := func(file string, at time.Duration) Registry {
		t.Helper()
		reg, err := Load(context.Background(), filepath.Join(registryDir, file))
		if err != nil {
			t.Fatal(err)
		}
		reg.Loaded = base.Add(at)
		return reg
	}
	atStart := Registry{Source: "start", Loaded: base.Add(-time.Hour),
		Devices: map[string]map[string]string{"sensor-1": {"site": "start"}}}

	cfg := teststream.NewConfig()
	add := func(at time.Duration, e event) {
		t.Helper()
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.AddElements(base.Add(at).UnixMilli(), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	addAgg := func(a aggregate.Aggregate) {
		add(a.WindowEnd.Sub(base)-time.Millisecond, event{Aggregate: &a})
	}
	v1, v2 := load("devices.jsonl", 0), load("devices-v2.jsonl", every)
	// Before the first refresh tick: the load at start.
	addAgg(agg("sensor-1", -time.Minute))
	// First refresh period [0, 2m): devices.jsonl.
	add(0, event{Registry: &v1})
	addAgg(agg("sensor-1", 0))
	addAgg(agg("sensor-3", time.Minute))
	if err := cfg.AdvanceWatermark(base.Add(every).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	// Second period [2m, 4m): devices-v2.jsonl moved sensor-1 and added
	// sensor-3.
	add(every, event{Registry: &v2})
	addAgg(agg("sensor-1", every))
	addAgg(agg("sensor-3", every+time.Minute))
	if err := cfg.AdvanceWatermarkToInfinity(); err != nil {
		t.Fatal(err)
	}

	p, s := beam.NewPipelineWithRoot()
	registries, aggregates := beam.ParDo2(s, splitEvent, teststream.Create(s, cfg))
	updates := beam.WindowInto(s, window.NewFixedWindows(every), registries)
	aggs := beam.WindowInto(s, window.NewFixedWindows(time.Minute), aggregates)
	out, err := join(s, aggs, beam.Create(s, atStart), updates)
	if err != nil {
		t.Fatal(err)
	}
	assertDescribed(s, out,
		"sensor-1 -1m0s site=start",
		"sensor-1 0s floor=3,model=th-200,owner=facilities,site=berlin",
		"sensor-3 1m0s unknown",
		"sensor-1 2m0s floor=1,model=th-200,owner=facilities,site=munich",
		"sensor-3 3m0s model=th-300,owner=labs,site=rome")
	if _, err := ptest.RunWithMetrics(p); err != nil {
		t.Fatalf("pipeline failed: %v", err)
	}
}

// TestJoinWithRefreshOnPrism runs the periodic reloads for a few ticks and
// checks that an aggregate of a window inside them is enriched from the
// file, and that the job ends when the reloads stop.
func TestJoinWithRefreshOnPrism(t *testing.T) {
	const every = 500 * time.Millisecond
	now := time.Now().UnixMilli()
	tick0 := time.UnixMilli(now - now%every.Milliseconds())
	// A window in the second refresh period.
	a := aggregate.Aggregate{DeviceID: "sensor-2", Metric: "humidity",
		WindowStart: tick0.Add(every), WindowEnd: tick0.Add(every + every/2)}

	p, s := beam.NewPipelineWithRoot()
	aggs := beam.WindowInto(s, window.NewFixedWindows(every/2), beam.ParDo(s, atWindowEnd, beam.Create(s, a)))
	from := func(c *config) error { c.From = tick0; return nil }
	out := Join(s, aggs, filepath.Join(registryDir, "devices.csv"),
		Refresh(every), RefreshUntil(tick0.Add(3*every)), from)
	got := beam.ParDo(s, describe, beam.WindowInto(s, window.NewGlobalWindows(), out))
	passert.Equals(s, got, fmt.Sprintf("sensor-2 %s model=th-100,owner=labs,site=paris", a.WindowStart.Sub(base)))
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("pipeline failed: %v", err)
	}
	// The load at start, then one per tick in [tick0, tick0+3*every).
	if got := counter(res, "registry_loads"); got != 4 {
		t.Errorf("enrich/registry_loads = %d, want 4", got)
	}
}

// commandTopic is the topic of a command.
func commandTopic(p mqttio.Publication) string {
	return p.Topic
}

// ruleInput is what the telemetry job hands rules.Evaluate of an enriched
// aggregate.
func ruleInput(e Enriched) rules.Input {
	return rules.Input{Aggregate: e.Aggregate, Device: e.Device}
}

// TestJoinFeedsRules checks that enriched aggregates flow into
// rules.Evaluate and that a rule scoped to a site fires only for the
// devices of that site.
func TestJoinFeedsRules(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	aggs := windowed(s, beam.Create(s, agg("sensor-1", 0), agg("sensor-2", 0), agg("intruder", 0)))
	enriched := Join(s, aggs, filepath.Join(registryDir, "devices.jsonl"))
	hot := rules.Rule{Name: "hot-berlin", Metric: "temperature", Op: ">", Value: 10,
		Scope: map[string]string{"site": "berlin"}}
	commands, rejected := rules.Evaluate(s, beam.ParDo(s, ruleInput, enriched), []rules.Rule{hot})
	passert.Equals(s, beam.ParDo(s, commandTopic, beam.WindowInto(s, window.NewGlobalWindows(), commands)),
		"devices/sensor-1/commands")
	passert.Empty(s, beam.WindowInto(s, window.NewGlobalWindows(), rejected))
	if _, err := ptest.RunWithMetrics(p); err != nil {
		t.Fatalf("pipeline failed: %v", err)
	}
}
