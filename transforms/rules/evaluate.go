package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Input)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Rejected)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*firing)(nil)).Elem())
	register.Function2x0(toInput)
	register.DoFn4x0[context.Context, Input, func(string, firing), func(Rejected)](&matchFn{})
	register.DoFn6x1[context.Context, state.Provider, timers.Provider, string, firing, func(mqttio.Publication), error](&cooldownFn{})
	register.Emitter1[Input]()
	register.Emitter2[string, firing]()
	register.Emitter1[Rejected]()
	register.Emitter1[mqttio.Publication]()
}

// Beam metrics of Evaluate, in namespace "rules".
var (
	firedCount      = beam.NewCounter("rules", "fired")
	suppressedCount = beam.NewCounter("rules", "suppressed_cooldown")
	rejectedCount   = beam.NewCounter("rules", "rejected")
)

// DefaultCommandTopic is the command topic template of Evaluate without the
// CommandTopic option.
const DefaultCommandTopic = "devices/{device_id}/commands"

// Input is an aggregate with the attributes of its device (e.g. "site",
// "model"), which a Rule's Scope is matched against. Evaluate takes either
// Inputs or bare aggregates; a bare aggregate has no attributes, so only
// rules without Scope apply to it.
type Input struct {
	Aggregate aggregate.Aggregate
	Device    map[string]string
}

// Rejected is a firing rule whose command Evaluate refused to build because
// the device id would make an invalid or unsafe topic.
type Rejected struct {
	DeviceID string
	Rule     string
	Reason   string
}

// Payload is the JSON payload of a command (the field names are those of
// the JSON). Decode a command's payload into it to read it back.
type Payload struct {
	Rule     string `json:"rule"`
	DeviceID string `json:"device_id"`
	Metric   string `json:"metric"`
	Stat     string `json:"stat"`
	Op       string `json:"op"`
	// Value is the aggregate's statistic that broke the Threshold.
	Value       float64         `json:"value"`
	Threshold   float64         `json:"threshold"`
	WindowStart time.Time       `json:"window_start"`
	WindowEnd   time.Time       `json:"window_end"`
	Pane        string          `json:"pane,omitempty"`
	Command     json.RawMessage `json:"command"`
}

// Option configures Evaluate. An option given an invalid value makes
// Evaluate fail with an error that names the option.
type Option func(*config) error

type config struct {
	Topic     string
	Lateness  time.Duration
	SkipEarly bool
}

// CommandTopic sets the topic template of the commands (default
// "devices/{device_id}/commands"). It must contain {device_id}, may contain
// {rule} and {metric}, and with those filled must be a valid topic (see
// mqttio.ValidateTopic).
func CommandTopic(tmpl string) Option {
	return func(c *config) error {
		if !strings.Contains(tmpl, "{device_id}") {
			return fmt.Errorf("option CommandTopic: %q must contain {device_id}", tmpl)
		}
		probe := expandTopic(tmpl, map[string]string{"device_id": "x", "rule": "x", "metric": "x"})
		if strings.ContainsAny(probe, "{}") {
			return fmt.Errorf("option CommandTopic: %q has a placeholder other than {device_id}, {rule} and {metric}", tmpl)
		}
		if err := mqttio.ValidateTopic(probe); err != nil {
			return fmt.Errorf("option CommandTopic: %q does not make a valid topic: %w", tmpl, err)
		}
		c.Topic = tmpl
		return nil
	}
}

// AllowedLateness tells Evaluate how late the aggregation's panes can come
// (its allowed lateness; default 0). The cooldown state of a device is kept
// this much longer, so that a late pane of a window whose command was sent
// does not send it again even when the cooldown is zero.
func AllowedLateness(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("option AllowedLateness: must not be negative, got %v", d)
		}
		c.Lateness = d
		return nil
	}
}

// SkipEarlyPanes ignores aggregates of early (speculative) panes, so that
// only the on-time and late panes of a window, which hold all its data so
// far, can send commands. By default every pane is evaluated.
func SkipEarlyPanes() Option {
	return func(c *config) error {
		c.SkipEarly = true
		return nil
	}
}

// Evaluate applies rules to aggs, a windowed PCollection of
// aggregate.Aggregate or of Input, and returns the commands
// (PCollection<mqttio.Publication>, for mqttio.Write) and the rejected
// firings (PCollection<Rejected>).
//
// A rule fires for an aggregate of its Metric whose Stat compares to its
// Value with its Op and whose device attributes match its Scope. The command
// is published to the CommandTopic filled with the device id; the
// Publication's Fields also carry "device_id", "rule" and "metric", so
// mqttio.Write's TopicTemplate can be used instead. Its payload is a JSON
// Payload: the rule, the device, the window, the value and the threshold,
// and the rule's Command.
//
// Cooldown: for each device and rule, a command is sent only when no
// command was sent for a window ending less than the rule's Cooldown before
// or after this one (event time of the window ends); the others are counted
// as rules/suppressed_cooldown and do not extend the cooldown. Every pane of
// a window (early, on time, late) is evaluated unless SkipEarlyPanes is
// given, but a window sends a command at most once: a later pane of a window
// that already sent one is suppressed, whatever the cooldown, as long as the
// state is kept (see AllowedLateness). A pane that no longer breaks the
// threshold does not take back a command sent for an earlier pane. The state
// lives per device and rule in a stateful DoFn over the global window and is
// cleared by an event-time timer once the watermark passes the last
// command's window end plus the cooldown and AllowedLateness, so it does not
// grow with the number of windows.
//
// A firing whose device id is empty, is not valid UTF-8, contains '/', '+',
// '#' or NUL, or whose topic is otherwise invalid is never published: it
// goes to the rejected output (rules/rejected). rules/fired counts the
// commands sent.
//
// Evaluate panics when the arguments or options are invalid; TryEvaluate
// returns the error instead.
func Evaluate(s beam.Scope, aggs beam.PCollection, rules []Rule, opts ...Option) (commands, rejected beam.PCollection) {
	commands, rejected, err := TryEvaluate(s, aggs, rules, opts...)
	if err != nil {
		panic(err)
	}
	return commands, rejected
}

// TryEvaluate is Evaluate returning an error instead of panicking.
func TryEvaluate(s beam.Scope, aggs beam.PCollection, rules []Rule, opts ...Option) (commands, rejected beam.PCollection, err error) {
	fail := func(err error) (beam.PCollection, beam.PCollection, error) {
		return beam.PCollection{}, beam.PCollection{}, fmt.Errorf("rules.Evaluate: %w", err)
	}
	cfg := config{Topic: DefaultCommandTopic}
	for _, opt := range opts {
		if opt == nil {
			return fail(errors.New("nil Option"))
		}
		if err := opt(&cfg); err != nil {
			return fail(err)
		}
	}
	if err := Validate(rules); err != nil {
		return fail(err)
	}
	rs := make([]Rule, len(rules))
	for i, r := range rules {
		r.Stat, _ = statOf(r.Stat)
		rs[i] = r
	}
	if !aggs.IsValid() {
		return fail(errors.New("the input is an invalid PCollection"))
	}
	s = s.Scope("rules.Evaluate")
	in := aggs
	switch t := aggs.Type().Type(); t {
	case reflect.TypeOf(Input{}):
	case reflect.TypeOf(aggregate.Aggregate{}):
		in = beam.ParDo(s, toInput, aggs)
	default:
		return fail(fmt.Errorf("the input must be a PCollection<aggregate.Aggregate> or PCollection<rules.Input>, got PCollection<%v>", t))
	}
	fired, rejected := beam.ParDo2(s, &matchFn{Rules: rs, Topic: cfg.Topic, SkipEarly: cfg.SkipEarly}, in)
	// Cooldowns span windows: the state must live in the global window.
	global := beam.WindowInto(s, window.NewGlobalWindows(), fired)
	commands = beam.ParDo(s, &cooldownFn{
		Lateness: cfg.Lateness,
		Last:     state.MakeValueState[int64]("last"),
		GC:       timers.InEventTime("gc"),
	}, global)
	return commands, rejected, nil
}

func toInput(a aggregate.Aggregate, emit func(Input)) {
	emit(Input{Aggregate: a})
}

// firing is a rule that broke its threshold, with its command, on its way
// to the cooldown.
type firing struct {
	WindowEnd time.Time
	Cooldown  time.Duration
	Command   mqttio.Publication
}

// matchFn evaluates the rules on each aggregate.
type matchFn struct {
	Rules     []Rule
	Topic     string
	SkipEarly bool
}

// ProcessElement emits each firing rule's command keyed by device and rule,
// or a Rejected for an unsafe device id.
func (fn *matchFn) ProcessElement(ctx context.Context, in Input, emit func(string, firing), reject func(Rejected)) {
	a := &in.Aggregate
	if fn.SkipEarly && a.Pane == aggregate.PaneEarly {
		return
	}
	for i := range fn.Rules {
		r := &fn.Rules[i]
		v, ok := match(r, a, in.Device)
		if !ok {
			continue
		}
		pub, err := command(fn.Topic, r, a, v)
		if err != nil {
			rejectedCount.Inc(ctx, 1)
			reject(Rejected{DeviceID: a.DeviceID, Rule: r.Name, Reason: err.Error()})
			continue
		}
		// The device id has no '/', so the key is unambiguous.
		emit(a.DeviceID+"/"+r.Name, firing{WindowEnd: a.WindowEnd, Cooldown: r.Cooldown, Command: pub})
	}
}

// match reports whether r fires for a on a device with attributes dev, and
// the value compared.
func match(r *Rule, a *aggregate.Aggregate, dev map[string]string) (float64, bool) {
	if a.Metric != r.Metric {
		return 0, false
	}
	for k, want := range r.Scope {
		if got, ok := dev[k]; !ok || got != want {
			return 0, false
		}
	}
	v := statValue(r.Stat, a)
	if math.IsNaN(v) {
		return 0, false
	}
	ok, _ := compare(r.Op, v, r.Value)
	return v, ok
}

func statValue(stat string, a *aggregate.Aggregate) float64 {
	switch stat {
	case StatMax:
		return a.Max
	case StatMin:
		return a.Min
	case StatFirst:
		return a.First
	case StatLast:
		return a.Last
	case StatCount:
		return float64(a.Count)
	case StatSum:
		return a.Sum
	}
	return a.Mean
}

// command builds the Publication of rule r firing on a with value v.
func command(tmpl string, r *Rule, a *aggregate.Aggregate, v float64) (mqttio.Publication, error) {
	if err := checkLevel(a.DeviceID); err != nil {
		return mqttio.Publication{}, fmt.Errorf("unsafe device id: %w", err)
	}
	fields := map[string]string{"device_id": a.DeviceID, "rule": r.Name, "metric": a.Metric}
	for _, name := range []string{"rule", "metric"} {
		if strings.Contains(tmpl, "{"+name+"}") {
			if err := checkLevel(fields[name]); err != nil {
				return mqttio.Publication{}, fmt.Errorf("unsafe %s for the command topic: %w", name, err)
			}
		}
	}
	topic := expandTopic(tmpl, fields)
	if err := mqttio.ValidateTopic(topic); err != nil {
		return mqttio.Publication{}, fmt.Errorf("invalid command topic: %w", err)
	}
	cmd := r.Command
	if len(cmd) == 0 {
		cmd = json.RawMessage("null")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // devices read "op":">", not "\u003e"
	err := enc.Encode(Payload{
		Rule: r.Name, DeviceID: a.DeviceID, Metric: a.Metric, Stat: r.Stat, Op: r.Op,
		Value: v, Threshold: r.Value,
		WindowStart: a.WindowStart.UTC(), WindowEnd: a.WindowEnd.UTC(), Pane: a.Pane,
		Command: cmd,
	})
	if err != nil {
		return mqttio.Publication{}, fmt.Errorf("encoding the payload: %w", err)
	}
	payload := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return mqttio.Publication{Topic: topic, Fields: fields, Payload: payload}, nil
}

// checkLevel checks a value that must form exactly one topic level.
func checkLevel(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case !utf8.ValidString(s):
		return fmt.Errorf("%q is not valid UTF-8", s)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%q contains NUL", s)
	case strings.ContainsAny(s, "/+#"):
		return fmt.Errorf("%q contains '/', '+' or '#'", s)
	}
	return nil
}

func expandTopic(tmpl string, fields map[string]string) string {
	for name, v := range fields {
		tmpl = strings.ReplaceAll(tmpl, "{"+name+"}", v)
	}
	return tmpl
}

// cooldownFn passes a firing's command on unless the same rule sent one to
// the same device within the cooldown. Its input is keyed by device and rule.
type cooldownFn struct {
	Lateness time.Duration
	// Last is the window end (Unix milliseconds) of the last command sent.
	Last state.Value[int64]
	// GC clears Last once no later pane or window can be suppressed by it.
	GC timers.EventTime
}

// ProcessElement sends or suppresses one firing.
func (fn *cooldownFn) ProcessElement(ctx context.Context, sp state.Provider, tp timers.Provider, _ string, f firing, emit func(mqttio.Publication)) error {
	end := f.WindowEnd.UnixMilli()
	last, ok, err := fn.Last.Read(sp)
	if err != nil {
		return fmt.Errorf("rules.Evaluate: reading the cooldown state: %w", err)
	}
	if ok {
		d := time.Duration(end-last) * time.Millisecond
		if d < 0 {
			d = -d
		}
		if d == 0 || d < f.Cooldown {
			suppressedCount.Inc(ctx, 1)
			return nil
		}
		end = max(end, last) // an older window does not move the cooldown back
	}
	if err := fn.Last.Write(sp, end); err != nil {
		return fmt.Errorf("rules.Evaluate: writing the cooldown state: %w", err)
	}
	fn.GC.Set(tp, time.UnixMilli(end).Add(f.Cooldown+fn.Lateness), timers.WithNoOutputTimestamp())
	firedCount.Inc(ctx, 1)
	emit(f.Command)
	return nil
}

// OnTimer forgets the last command once its cooldown is over.
func (fn *cooldownFn) OnTimer(_ context.Context, sp state.Provider, _ timers.Provider, _ string, _ timers.Context, _ func(mqttio.Publication)) error {
	if err := fn.Last.Clear(sp); err != nil {
		return fmt.Errorf("rules.Evaluate: clearing the cooldown state: %w", err)
	}
	return nil
}
