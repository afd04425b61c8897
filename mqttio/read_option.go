package mqttio

import (
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/reflectx"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

// ReadOption configures Read: the options below, and every Option (the
// connection and the QoS). An option given an invalid value makes Read fail
// with an error that names the option.
type ReadOption interface {
	applyRead(*readConfig) error
}

// readOption is a ReadOption that only Read takes.
type readOption func(*readConfig) error

func (o readOption) applyRead(c *readConfig) error { return o(c) }

// readConfig holds every setting of a Read. It travels inside the DoFn, so
// its fields are exported for serialization; users set them through options.
type readConfig struct {
	connConfig
	streamread.Settings

	Group     string
	EventTime *beam.EncodedFunc `json:",omitempty"`
	// InflightWindow is 0 when not set (see window).
	InflightWindow int
	// SessionExpiry is 0 when not set: 24h (see sessionExpiry).
	SessionExpiry time.Duration
}

func newReadConfig(opts []ReadOption) (readConfig, error) {
	cfg := readConfig{
		connConfig: defaultConnConfig(),
		Settings:   streamread.DefaultSettings(),
	}
	if err := optcheck.Apply("mqttio", &cfg, opts, "ReadOption", ReadOption.applyRead); err != nil {
		return cfg, err
	}
	return cfg, cfg.checkVersion()
}

// settingsOption is the ReadOption of a streamread.Settings setter.
func settingsOption(set func(*streamread.Settings) error) ReadOption {
	return readOption(func(c *readConfig) error { return set(&c.Settings) })
}

// Readers starts n readers, each with its own client id. With n > 1 they
// subscribe through shared subscriptions ($share/{group}/{filter}), so the
// broker balances the messages across them; with n = 1 (default) the
// subscription is plain.
func Readers(n int) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetReaders(n) })
}

// SharedGroup names the shared-subscription group used when Readers > 1.
// The default is the client id.
func SharedGroup(name string) ReadOption {
	return readOption(func(c *readConfig) error {
		if name == "" {
			return optcheck.Errorf("SharedGroup", "must not be empty")
		}
		if err := checkTopicLevel(name); err != nil {
			return optcheck.Errorf("SharedGroup", "%v", err)
		}
		c.Group = name
		return nil
	})
}

// MaxRecords makes the read bounded: each reader stops after emitting n
// messages.
func MaxRecords(n int64) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetMaxRecords(n) })
}

// MaxReadTime makes the read bounded: the readers stop this long after they
// started. Windows still open then fire.
func MaxReadTime(d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetMaxReadTime(d) })
}

// EventTime takes each message's event time from fn instead of the time it
// was received. fn returns false when the message carries no usable time,
// and the receive time is used. fn must be a top-level function registered
// with register.Function1x2, so that workers can find it.
func EventTime(fn func(Message) (time.Time, bool)) ReadOption {
	return readOption(func(c *readConfig) error {
		if fn == nil {
			return optcheck.Errorf("EventTime", "function must not be nil")
		}
		c.EventTime = &beam.EncodedFunc{Fn: reflectx.MakeFunc(fn)}
		return nil
	})
}

// MaxOutOfOrderness is how far behind the newest event time seen a message may
// be without being late: the watermark trails the newest event time by this
// bound. Default 0, which suits receive-time event times; set it when
// EventTime takes times from devices whose messages arrive out of order.
func MaxOutOfOrderness(d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetMaxOutOfOrderness(d) })
}

// WatermarkStep makes the watermark advance in whole steps of d since the
// Unix epoch (default 1s; 0: every millisecond). Windows that end on a whole
// step close as early as with an exact watermark, while the stages
// downstream see one watermark change per step instead of one per bundle:
// prism (v2.77.0) rescans a GroupByKey's pending elements on every change,
// which made it the largest cost of a windowed job.
func WatermarkStep(d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetWatermarkStep(d) })
}

// IdleWatermark is how long a reader waits without messages before it
// advances the watermark to the current time minus MaxOutOfOrderness
// (default 1s), so that windows close on quiet topics.
func IdleWatermark(d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetIdleWatermark(d) })
}

// InflightWindow is the broker's limit on unacknowledged QoS 1 and 2 messages
// per client. Once a reader has emitted this many unacknowledged messages and
// nothing more is ready, it checkpoints so that they get acknowledged.
//
// With MQTT 3.1.1 (default 20, as Mosquitto and VerneMQ) set it to the
// broker's max_inflight_messages. With MQTT 5 the reader announces it to the
// broker (Receive Maximum), which then sends no more unacknowledged; without
// the option the reader announces MaxBuffered and takes the broker's window
// from its CONNACK (see ProtocolVersion).
func InflightWindow(n int) ReadOption {
	return readOption(func(c *readConfig) error {
		if n < 1 || n > 65535 {
			return optcheck.Errorf("InflightWindow", "must be between 1 and 65535, got %d", n)
		}
		c.InflightWindow = n
		return nil
	})
}

// MaxBuffered bounds the messages a reader holds that it has received but not
// yet emitted (default 1000, at most 1e6). When the buffer is full the reader
// stops reading from its connection, and the broker holds the backlog.
func MaxBuffered(n int) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetMaxBuffered(n) })
}

// MaxBundle bounds how many messages (default 10000) and how long (default
// 500ms) a reader emits before it checkpoints. Smaller bundles lower
// latency; larger ones cost less per message.
func MaxBundle(records int, d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetMaxBundle(records, d) })
}

// eventTimeFunc returns the configured event-time function, or nil.
func (c *readConfig) eventTimeFunc() (func(Message) (time.Time, bool), error) {
	if c.EventTime == nil || c.EventTime.Fn == nil {
		return nil, nil
	}
	f := c.EventTime.Fn
	want := reflect.TypeOf(func(Message) (time.Time, bool) { return time.Time{}, false })
	if f.Type() != want {
		return nil, fmt.Errorf("mqttio: EventTime function has type %v, want %v", f.Type(), want)
	}
	if direct, ok := f.(interface{ Interface() any }); ok {
		if fn, ok := direct.Interface().(func(Message) (time.Time, bool)); ok {
			return fn, nil
		}
	}
	call := reflectx.ToFunc1x2(f)
	return func(m Message) (time.Time, bool) {
		t, ok := call.Call1x2(m)
		return t.(time.Time), ok.(bool)
	}, nil
}
