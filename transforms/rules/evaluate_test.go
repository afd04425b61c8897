package rules

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function1x1(describe)
	register.Function1x1(describeRejected)
}

// describe summarizes a command as "topic rule window_end(HH:MM) pane value".
func describe(p mqttio.Publication) string {
	var pl Payload
	if err := json.Unmarshal(p.Payload, &pl); err != nil {
		return "bad payload: " + err.Error()
	}
	return fmt.Sprintf("%s %s %s %s %v", p.Topic, pl.Rule, pl.WindowEnd.Format("15:04"), pl.Pane, pl.Value)
}

func describeRejected(r Rejected) string {
	return fmt.Sprintf("%q %s: %s", r.DeviceID, r.Rule, r.Reason)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// agg is a 5-minute window of metric "temp" ending at minute end, with all
// statistics v.
func agg(device string, end int, v float64, pane string) aggregate.Aggregate {
	we := t0.Add(time.Duration(end) * time.Minute)
	return aggregate.Aggregate{
		DeviceID: device, Metric: "temp", WindowStart: we.Add(-5 * time.Minute), WindowEnd: we,
		Count: 1, Min: v, Max: v, Sum: v, Mean: v, First: v, Last: v,
		FirstTime: we.Add(-time.Minute), LastTime: we.Add(-time.Minute), Pane: pane,
	}
}

func counter(t *testing.T, pr beam.PipelineResult, name string) int64 {
	t.Helper()
	var n int64
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "rules" && c.Name() == name {
			n += c.Result()
		}
	}
	return n
}

func TestEvaluate(t *testing.T) {
	rs := []Rule{
		{Name: "hot", Metric: "temp", Stat: "max", Op: ">", Value: 80},
		{Name: "cold-berlin", Metric: "temp", Op: "<", Value: 0, Scope: map[string]string{"site": "berlin"}},
	}
	p, s := beam.NewPipelineWithRoot()
	in := beam.CreateList(s, []Input{
		{Aggregate: agg("d1", 5, 90, aggregate.PaneOnTime)},                                              // hot
		{Aggregate: agg("d2", 5, 50, aggregate.PaneOnTime)},                                              // nothing
		{Aggregate: agg("d3", 5, -5, aggregate.PaneOnTime), Device: map[string]string{"site": "berlin"}}, // cold
		{Aggregate: agg("d4", 5, -5, aggregate.PaneOnTime), Device: map[string]string{"site": "paris"}},  // out of scope
		{Aggregate: agg("a/b", 5, 90, aggregate.PaneOnTime)},
		{Aggregate: agg("+", 5, 90, aggregate.PaneOnTime)},
		{Aggregate: agg("#", 5, 90, aggregate.PaneOnTime)},
		{Aggregate: agg("", 5, 90, aggregate.PaneOnTime)},
		{Aggregate: agg("x\x00", 5, 90, aggregate.PaneOnTime)},
		{Aggregate: agg("cool/../x", 5, 50, aggregate.PaneOnTime)}, // unsafe but not firing: dropped silently
	})
	cmds, rejected := Evaluate(s, in, rs, CommandTopic("fleet/{device_id}/cmd"))
	passert.Equals(s, beam.ParDo(s, describe, cmds),
		"fleet/d1/cmd hot 12:05 on_time 90",
		"fleet/d3/cmd cold-berlin 12:05 on_time -5")
	passert.Equals(s, beam.ParDo(s, describeRejected, rejected),
		`"a/b" hot: unsafe device id: "a/b" contains '/', '+' or '#'`,
		`"+" hot: unsafe device id: "+" contains '/', '+' or '#'`,
		`"#" hot: unsafe device id: "#" contains '/', '+' or '#'`,
		`"" hot: unsafe device id: empty`,
		`"x\x00" hot: unsafe device id: "x\x00" contains NUL`)
	pr := ptest.RunAndValidate(t, p)
	assert.Equal(t, int64(2), counter(t, pr, "fired"))
	assert.Equal(t, int64(5), counter(t, pr, "rejected"))
}

func TestEvaluateAggregates(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	in := beam.CreateList(s, []aggregate.Aggregate{agg("d1", 5, 90, aggregate.PaneOnTime), agg("d1", 10, 10, aggregate.PaneOnTime)})
	cmds, rejected := Evaluate(s, in, []Rule{{Name: "hot", Metric: "temp", Op: ">=", Value: 90}})
	passert.Equals(s, beam.ParDo(s, describe, cmds), "devices/d1/commands hot 12:05 on_time 90")
	passert.Empty(s, rejected)
	ptest.RunAndValidate(t, p)
}

func TestSkipEarlyPanes(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	in := beam.CreateList(s, []aggregate.Aggregate{
		agg("d1", 5, 95, aggregate.PaneEarly), agg("d1", 5, 90, aggregate.PaneOnTime),
		agg("d2", 5, 95, aggregate.PaneEarly), agg("d2", 5, 50, aggregate.PaneOnTime),
	})
	cmds, _ := Evaluate(s, in, []Rule{{Name: "hot", Metric: "temp", Op: ">", Value: 80}}, SkipEarlyPanes())
	passert.Equals(s, beam.ParDo(s, describe, cmds), "devices/d1/commands hot 12:05 on_time 90")
	ptest.RunAndValidate(t, p)
}

func TestTryEvaluateErrors(t *testing.T) {
	good := []Rule{{Name: "hot", Metric: "temp", Op: ">", Value: 1}}
	_, s := beam.NewPipelineWithRoot()
	aggs := beam.CreateList(s, []aggregate.Aggregate{agg("d1", 5, 90, "")})
	_, _, err := TryEvaluate(s, aggs, nil)
	assert.ErrorContains(t, err, "rules.Evaluate: no rules")
	_, _, err = TryEvaluate(s, aggs, []Rule{{Name: "hot", Metric: "temp", Op: "~"}})
	assert.ErrorContains(t, err, `rules.Evaluate: rule 0 ("hot"): field op`)
	_, _, err = TryEvaluate(s, aggs, good, CommandTopic("x"))
	assert.ErrorContains(t, err, "rules.Evaluate: option CommandTopic")
	_, _, err = TryEvaluate(s, aggs, good, nil)
	assert.ErrorContains(t, err, "nil Option")
	_, _, err = TryEvaluate(s, beam.CreateList(s, []string{"x"}), good)
	assert.ErrorContains(t, err, "PCollection<string>")
	assert.Panics(t, func() { Evaluate(s, aggs, nil) })
}

// TestCooldown checks on a TestStream that a rule sends a device at most one
// command per cooldown, per device, and that a late pane of a window whose
// command was sent does not send it again.
func TestCooldown(t *testing.T) {
	rs := []Rule{
		{Name: "hot", Metric: "temp", Op: ">", Value: 80, Cooldown: 15 * time.Minute, Command: json.RawMessage(`{"action":"cool"}`)},
		{Name: "any", Metric: "temp", Op: ">", Value: 0}, // no cooldown
	}
	ms := func(minute int) int64 { return t0.Add(time.Duration(minute) * time.Minute).UnixMilli() }
	cfg := teststream.NewConfig()
	// Each window's on-time pane arrives at its end, with the watermark.
	for end := 5; end <= 40; end += 5 {
		require.NoError(t, cfg.AddElements(ms(end)-1,
			agg("d1", end, 90, aggregate.PaneOnTime),
			agg("d2", end+1, 90, aggregate.PaneOnTime)))
		if end == 20 { // a late pane of window 12:20, which sent "hot"
			late := agg("d1", 20, 95, aggregate.PaneLate)
			late.PaneIndex = 1
			require.NoError(t, cfg.AddElements(ms(20)-1, late))
		}
		require.NoError(t, cfg.AdvanceWatermark(ms(end)))
	}
	// The cooldown state is gone once the watermark has passed; a much later
	// window fires again.
	require.NoError(t, cfg.AdvanceWatermark(ms(120)))
	require.NoError(t, cfg.AddElements(ms(125)-1, agg("d1", 125, 90, aggregate.PaneOnTime)))
	require.NoError(t, cfg.AdvanceWatermarkToInfinity())

	p, s := beam.NewPipelineWithRoot()
	cmds, _ := Evaluate(s, teststream.Create(s, cfg), rs, AllowedLateness(10*time.Minute))
	var want []any
	for _, end := range []int{5, 20, 35} {
		want = append(want, fmt.Sprintf("devices/d1/commands hot 12:%02d on_time 90", end))
		want = append(want, fmt.Sprintf("devices/d2/commands hot 12:%02d on_time 90", end+1))
	}
	want = append(want, "devices/d1/commands hot 14:05 on_time 90")
	for end := 5; end <= 40; end += 5 {
		want = append(want, fmt.Sprintf("devices/d1/commands any 12:%02d on_time 90", end))
		want = append(want, fmt.Sprintf("devices/d2/commands any 12:%02d on_time 90", end+1))
	}
	want = append(want, "devices/d1/commands any 14:05 on_time 90")
	passert.Equals(s, beam.ParDo(s, describe, cmds), want...)
	pr := ptest.RunAndValidate(t, p)
	assert.Equal(t, int64(len(want)), counter(t, pr, "fired"))
	// hot: 5 windows per device within a cooldown, and the late pane; any:
	// the late pane.
	assert.Equal(t, int64(5+5+1+1), counter(t, pr, "suppressed_cooldown"))
}

// TestCooldownStateExpires checks that the event-time timer clears the state
// once the watermark passes the last command's window end plus the cooldown
// and the allowed lateness: a late pane of a window that sent a command is
// suppressed while the state lives, and sends again after it is gone.
func TestCooldownStateExpires(t *testing.T) {
	rs := []Rule{{Name: "hot", Metric: "temp", Op: ">", Value: 80}} // no cooldown
	ms := func(minute int) int64 { return t0.Add(time.Duration(minute) * time.Minute).UnixMilli() }
	late := agg("d1", 5, 90, aggregate.PaneLate)
	tests := []struct {
		name string
		opts []Option
		want []any
	}{
		{"no allowed lateness", nil, []any{
			"devices/d1/commands hot 12:05 on_time 90",
			"devices/d1/commands hot 12:05 late 90", // at 12:06, the state is gone
			"devices/d1/commands hot 12:05 late 90", // at 12:30
		}},
		{"allowed lateness 10m", []Option{AllowedLateness(10 * time.Minute)}, []any{
			"devices/d1/commands hot 12:05 on_time 90",
			"devices/d1/commands hot 12:05 late 90", // at 12:30 only
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := teststream.NewConfig()
			require.NoError(t, cfg.AddElements(ms(5)-1, agg("d1", 5, 90, aggregate.PaneOnTime)))
			require.NoError(t, cfg.AdvanceWatermark(ms(6)))
			require.NoError(t, cfg.AddElements(ms(5)-1, late))
			require.NoError(t, cfg.AdvanceWatermark(ms(30)))
			require.NoError(t, cfg.AddElements(ms(5)-1, late))
			require.NoError(t, cfg.AdvanceWatermarkToInfinity())

			p, s := beam.NewPipelineWithRoot()
			cmds, _ := Evaluate(s, teststream.Create(s, cfg), rs, tt.opts...)
			passert.Equals(s, beam.ParDo(s, describe, cmds), tt.want...)
			ptest.RunAndValidate(t, p)
		})
	}
}
