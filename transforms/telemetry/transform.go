package telemetry

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

func init() {
	register.DoFn5x0[context.Context, mqttio.Message, func(beam.EventTime, Reading), func(beam.EventTime, DeadLetter), func(string, mqttio.Message)](&parseFn{})
	register.Emitter2[beam.EventTime, Reading]()
	register.Emitter2[beam.EventTime, DeadLetter]()
	register.Emitter2[string, mqttio.Message]()
}

// Beam metrics of Parse, in namespace "telemetry": readings counts the
// Readings, deadLetters the DeadLetters of each reason, as
// "dead_letters_<reason>" (e.g. "dead_letters_not_json");
// sparkplugIgnored the Sparkplug B commands and host states (not
// telemetry), rebirthRequests the rebirth requests made.
var (
	readingsCounter = beam.NewCounter("telemetry", "readings")
	deadLetters     = func() map[string]beam.Counter {
		m := make(map[string]beam.Counter, len(Reasons))
		for _, r := range Reasons {
			m[r] = beam.NewCounter("telemetry", "dead_letters_"+r)
		}
		return m
	}()
	sparkplugIgnored = beam.NewCounter("telemetry", "sparkplug_ignored")
	rebirthRequests  = beam.NewCounter("telemetry", "sparkplug_rebirth_requests")
)

// Parse turns msgs, a PCollection<mqttio.Message>, into readings, a
// PCollection<Reading>, and deadLetters, a PCollection<DeadLetter> of the
// messages that could not be parsed, each with its topic, original payload,
// receive time and reason. Nothing is dropped. See Parser for the formats
// and the Options for what can be configured; ParseWithCommands for
// Sparkplug B.
//
// Each Reading's element timestamp is its EventTime (the payload's timestamp,
// or the receive time), each DeadLetter's is the message's receive time. A
// message without a receive time (ReceivedAt zero) is given the time it is
// parsed at.
//
// Parse panics when the input or an option is invalid (also for option
// RebirthRequests, whose requests only ParseWithCommands returns); TryParse
// returns the error instead.
func Parse(s beam.Scope, msgs beam.PCollection, opts ...Option) (readings, deadLetters beam.PCollection) {
	readings, deadLetters, err := TryParse(s, msgs, opts...)
	if err != nil {
		panic(err)
	}
	return readings, deadLetters
}

// TryParse is Parse returning an error instead of panicking.
func TryParse(s beam.Scope, msgs beam.PCollection, opts ...Option) (readings, deadLetters beam.PCollection, err error) {
	cfg, err := newConfig(opts)
	if err == nil && cfg.RebirthCooldown > 0 {
		err = fmt.Errorf("telemetry: option RebirthRequests: Parse would drop the requests; use ParseWithCommands")
	}
	if err != nil {
		return readings, deadLetters, &parseError{err}
	}
	readings, deadLetters, _, err = parse(s, msgs, cfg)
	return readings, deadLetters, err
}

// ParseWithCommands is Parse that also returns commands, a
// PCollection<mqttio.Publication> of the Sparkplug B rebirth requests that
// option RebirthRequests makes (empty without it), for mqttio.Write with
// mqttio.TopicTemplate(sparkplug.NCMDTemplate): each Publication's Fields
// hold group_id, edge_node_id, device_id (the node's id, see
// SparkplugDeviceID) and rule (RebirthRule), and its Topic is the NCMD
// topic.
//
// # Sparkplug B
//
// Messages of a sparkplug_b format go, keyed by edge node
// ("group/edge_node"), through a stateful step that keeps each edge node's
// NBIRTH and its devices' DBIRTHs (metric names, aliases and datatypes),
// its next seq and when it last asked for a rebirth in Beam state, so that
// they hold across bundles, workers and (on Dataflow) job updates. It
// needs each edge node's messages in the order the node published them, as
// MQTT delivers one publisher's messages to one subscriber: read Sparkplug
// B topics with one reader (not a shared subscription over several), or
// expect the reordering to be reported as seq gaps.
//
//   - NBIRTH and DBIRTH define the metrics and are readings of their
//     values, with OnlineMetric 1. A DBIRTH, DDATA or NDATA before its
//     NBIRTH, a DDATA before its DBIRTH, are dead letters (ReasonNoBirth).
//   - NDATA and DDATA are readings of their values, each metric named by
//     its name or the BIRTH's name of its alias; an alias the BIRTH did not
//     define is a dead letter (ReasonUnknownAlias).
//   - NDEATH and DDEATH are readings of OnlineMetric 0 at their receive
//     time (NDEATH) or timestamp (DDEATH), an NDEATH for the node and each
//     of its devices; an NDEATH whose bdSeq is not the current NBIRTH's is
//     a dead letter (ReasonStaleDeath). After an NDEATH, the node's DATA
//     are dead letters until its next NBIRTH.
//   - seq: every message but an NDEATH has the node's next seq (0-255,
//     counting on from the NBIRTH's). A message that skips some reports the
//     gap as a dead letter with an empty payload (ReasonSeqGap) and is
//     decoded; one behind the expected seq (a redelivery) is decoded and
//     changes no state.
//   - Each distinct timestamp of a message's metrics (the metric's, else
//     the payload's, else the receive time) makes one reading; its Kind is
//     the message type, its DeviceID the SparkplugDeviceID, and a device's
//     readings carry the edge node's id in AttrGateway. Integers, floats,
//     doubles and Booleans (1, 0) are metrics; String, Text and UUID
//     metrics, and DateTimes (RFC 3339), are attributes; nulls, bdSeq and
//     the "Node Control/" metrics are left out. DataSets, Templates, Bytes,
//     Files, PropertySets and arrays are reported in a dead letter
//     (ReasonUnsupportedType) with the whole payload, and the message's
//     other metrics are readings. A value in the wrong field for its
//     datatype is a dead letter (ReasonWrongType).
//   - NCMD, DCMD and STATE messages are not telemetry: they are counted
//     ("telemetry/sparkplug_ignored") and make neither readings nor dead
//     letters.
//
// With RebirthRequests, a DATA before its BIRTH, a seq gap or an unknown
// alias also makes a rebirth request for the edge node, at most one per
// cooldown; the node's next NBIRTH and DBIRTHs restore its state. Without
// it, such a node's DATA are dead letters until it publishes its BIRTHs
// again on its own (when it reconnects). After a restart of a job whose
// state was lost (a new job, or prism), every node needs a rebirth.
func ParseWithCommands(s beam.Scope, msgs beam.PCollection, opts ...Option) (readings, deadLetters, commands beam.PCollection) {
	readings, deadLetters, commands, err := TryParseWithCommands(s, msgs, opts...)
	if err != nil {
		panic(err)
	}
	return readings, deadLetters, commands
}

// TryParseWithCommands is ParseWithCommands returning an error instead of
// panicking.
func TryParseWithCommands(s beam.Scope, msgs beam.PCollection, opts ...Option) (readings, deadLetters, commands beam.PCollection, err error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return readings, deadLetters, commands, &parseError{err}
	}
	return parse(s, msgs, cfg)
}

func parse(s beam.Scope, msgs beam.PCollection, cfg config) (readings, deadLetters, commands beam.PCollection, err error) {
	fail := func(err error) (beam.PCollection, beam.PCollection, beam.PCollection, error) {
		return beam.PCollection{}, beam.PCollection{}, beam.PCollection{}, err
	}
	want := reflect.TypeOf(mqttio.Message{})
	if !msgs.IsValid() || msgs.Type().Type() != want {
		got := "an invalid PCollection"
		if msgs.IsValid() {
			got = fmt.Sprintf("PCollection<%v>", msgs.Type().Type())
		}
		return fail(fmt.Errorf("telemetry.Parse: the input must be a PCollection<%v>, got %s", want, got))
	}
	s = s.Scope("telemetry.Parse")
	out, err := beam.TryParDo(s, &parseFn{Cfg: cfg}, msgs)
	if err != nil {
		return fail(fmt.Errorf("telemetry.Parse: %w", err))
	}
	readings, deadLetters = out[0], out[1]
	if !cfg.hasSparkplug() {
		commands, err = beam.TryCreateList(s, []mqttio.Publication{})
		if err != nil {
			return fail(fmt.Errorf("telemetry.Parse: %w", err))
		}
		return readings, deadLetters, commands, nil
	}
	sp, err := beam.TryParDo(s.Scope("Sparkplug"), &sparkplugFn{Cfg: cfg,
		Birth:   state.MakeValueState[spBirth]("birth"),
		Seq:     state.MakeValueState[int64]("seq"),
		Rebirth: state.MakeValueState[int64]("rebirth"),
	}, out[2])
	if err != nil {
		return fail(fmt.Errorf("telemetry.Parse: %w", err))
	}
	readings = beam.Flatten(s, readings, sp[0])
	deadLetters = beam.Flatten(s, deadLetters, sp[1])
	return readings, deadLetters, sp[2], nil
}

// parseFn is the DoFn behind Parse: it parses every format but Sparkplug
// B, whose messages it keys by edge node for sparkplugFn.
type parseFn struct {
	Cfg config

	parser *Parser
	rs     []Reading
	ds     []DeadLetter
}

func (f *parseFn) Setup() (err error) {
	f.parser, err = newParser(f.Cfg)
	return err
}

func (f *parseFn) ProcessElement(ctx context.Context, m mqttio.Message, emitReading func(beam.EventTime, Reading), emitDead func(beam.EventTime, DeadLetter), emitSparkplug func(string, mqttio.Message)) {
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = time.Now()
	}
	p := f.parser
	env, dl := p.envelope(m)
	if dl == nil && env.route.format == FormatSparkplugB {
		t, dl := p.sparkplugTopic(&env)
		switch {
		case dl != nil:
			emitDeadLetter(ctx, *dl, emitDead)
		case t.IsTelemetry():
			emitSparkplug(nodeKey(t), m)
		default:
			sparkplugIgnored.Inc(ctx, 1)
		}
		return
	}
	if dl == nil && (env.route.format == FormatJSON || env.route.format == FormatValue) {
		var r Reading
		if env.route.format == FormatJSON {
			r, dl = p.parseJSON(&env)
		} else {
			r, dl = p.parseValue(&env)
		}
		if dl == nil {
			readingsCounter.Inc(ctx, 1)
			emitReading(mtime.FromTime(r.EventTime), r)
			return
		}
	}
	if dl != nil {
		emitDeadLetter(ctx, *dl, emitDead)
		return
	}
	f.rs, f.ds = p.parseMany(env, f.rs[:0], f.ds[:0]) // batch, influx
	emitAll(ctx, f.rs, f.ds, emitReading, emitDead)
}

func emitDeadLetter(ctx context.Context, dl DeadLetter, emit func(beam.EventTime, DeadLetter)) {
	if c, ok := deadLetters[dl.Reason]; ok {
		c.Inc(ctx, 1)
	}
	emit(mtime.FromTime(dl.ReceivedAt), dl)
}

func emitAll(ctx context.Context, rs []Reading, ds []DeadLetter, emitReading func(beam.EventTime, Reading), emitDead func(beam.EventTime, DeadLetter)) {
	if len(rs) > 0 {
		readingsCounter.Inc(ctx, int64(len(rs)))
	}
	for _, r := range rs {
		emitReading(mtime.FromTime(r.EventTime), r)
	}
	for _, dl := range ds {
		emitDeadLetter(ctx, dl, emitDead)
	}
}

// parseError prefixes an option error with "telemetry.Parse" in place of the
// "telemetry" prefix NewParser gives it.
type parseError struct{ err error }

func (e *parseError) Error() string {
	return "telemetry.Parse: " + strings.TrimPrefix(e.err.Error(), "telemetry: ")
}

func (e *parseError) Unwrap() error { return e.err }
