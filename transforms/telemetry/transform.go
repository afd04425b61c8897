package telemetry

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

func init() {
	register.DoFn4x0[context.Context, mqttio.Message, func(beam.EventTime, Reading), func(beam.EventTime, DeadLetter)](&parseFn{})
	register.Emitter2[beam.EventTime, Reading]()
	register.Emitter2[beam.EventTime, DeadLetter]()
}

// Beam metrics of Parse, in namespace "telemetry": readings counts the
// Readings, deadLetters the DeadLetters of each reason, as
// "dead_letters_<reason>" (e.g. "dead_letters_not_json").
var (
	readingsCounter = beam.NewCounter("telemetry", "readings")
	deadLetters     = func() map[string]beam.Counter {
		m := make(map[string]beam.Counter, len(Reasons))
		for _, r := range Reasons {
			m[r] = beam.NewCounter("telemetry", "dead_letters_"+r)
		}
		return m
	}()
)

// Parse turns msgs, a PCollection<mqttio.Message>, into readings, a
// PCollection<Reading>, and deadLetters, a PCollection<DeadLetter> of the
// messages that could not be parsed, each with its topic, original payload,
// receive time and reason. Nothing is dropped. See Parser for the format and
// the Options for what can be configured.
//
// Each Reading's element timestamp is its EventTime (the payload's timestamp,
// or the receive time), each DeadLetter's is the message's receive time. A
// message without a receive time (ReceivedAt zero) is given the time it is
// parsed at.
//
// Parse panics when the input or an option is invalid; TryParse returns the
// error instead.
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
	if err != nil {
		return readings, deadLetters, &parseError{err}
	}
	want := reflect.TypeOf(mqttio.Message{})
	if !msgs.IsValid() || msgs.Type().Type() != want {
		got := "an invalid PCollection"
		if msgs.IsValid() {
			got = fmt.Sprintf("PCollection<%v>", msgs.Type().Type())
		}
		return readings, deadLetters, fmt.Errorf("telemetry.Parse: the input must be a PCollection<%v>, got %s", want, got)
	}
	s = s.Scope("telemetry.Parse")
	out, err := beam.TryParDo(s, &parseFn{Cfg: cfg}, msgs)
	if err != nil {
		return readings, deadLetters, fmt.Errorf("telemetry.Parse: %w", err)
	}
	return out[0], out[1], nil
}

// parseFn is the DoFn behind Parse.
type parseFn struct {
	Cfg config

	parser *Parser
}

func (f *parseFn) Setup() error {
	p, err := newParser(f.Cfg)
	if err != nil {
		return err
	}
	f.parser = p
	return nil
}

func (f *parseFn) ProcessElement(ctx context.Context, m mqttio.Message, emitReading func(beam.EventTime, Reading), emitDead func(beam.EventTime, DeadLetter)) {
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = time.Now()
	}
	r, dl := f.parser.Parse(m)
	if dl != nil {
		if c, ok := deadLetters[dl.Reason]; ok {
			c.Inc(ctx, 1)
		}
		emitDead(mtime.FromTime(dl.ReceivedAt), *dl)
		return
	}
	readingsCounter.Inc(ctx, 1)
	emitReading(mtime.FromTime(r.EventTime), r)
}

// parseError prefixes an option error with "telemetry.Parse" in place of the
// "telemetry" prefix NewParser gives it.
type parseError struct{ err error }

func (e *parseError) Error() string {
	return "telemetry.Parse: " + strings.TrimPrefix(e.err.Error(), "telemetry: ")
}

func (e *parseError) Unwrap() error { return e.err }
