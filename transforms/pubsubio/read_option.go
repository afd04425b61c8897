package pubsubio

import (
	"time"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

// ReadOption configures Read: the options below, and every Option. An
// option given an invalid value makes Read fail with an error that names the
// option.
type ReadOption interface {
	applyRead(*readConfig) error
}

// readOption is a ReadOption that only Read takes.
type readOption func(*readConfig) error

func (o readOption) applyRead(c *readConfig) error { return o(c) }

// readConfig holds every setting of a Read. It travels inside the DoFn, so
// its fields are exported for serialization; users set them through options.
type readConfig struct {
	clientConfig
	streamread.Settings

	SessionIdle time.Duration
}

func defaultReadConfig() readConfig {
	return readConfig{Settings: streamread.DefaultSettings(), SessionIdle: 5 * time.Minute}
}

func newReadConfig(opts []ReadOption) (readConfig, error) {
	cfg := defaultReadConfig()
	err := optcheck.Apply("pubsubio", &cfg, opts, "ReadOption", ReadOption.applyRead)
	return cfg, err
}

// settingsOption is the ReadOption of a streamread.Settings setter.
func settingsOption(set func(*streamread.Settings) error) ReadOption {
	return readOption(func(c *readConfig) error { return set(&c.Settings) })
}

// Readers starts n readers on the subscription (default 1), each with its
// own streaming pull; Pub/Sub balances the messages across them.
func Readers(n int) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetReaders(n) })
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

// MaxOutOfOrderness is how far behind the newest publish time seen a message
// may be without being late (default 0): the watermark trails the newest
// publish time by this bound. Pub/Sub does not deliver in publish order
// (redeliveries in particular), so set it to the lateness your windows
// should absorb.
func MaxOutOfOrderness(d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetMaxOutOfOrderness(d) })
}

// WatermarkStep makes the watermark advance in whole steps of d since the
// Unix epoch (default 1s; 0: every millisecond); see mqttio.WatermarkStep.
func WatermarkStep(d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetWatermarkStep(d) })
}

// IdleWatermark is how long a reader waits without messages before it
// advances the watermark to the current time minus MaxOutOfOrderness
// (default 1s), so that windows close on a quiet subscription.
func IdleWatermark(d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetIdleWatermark(d) })
}

// MaxBuffered bounds the messages a reader has received but not yet emitted
// (default 1000, at most 1e6). When the buffer is full the reader stops
// pulling, and the backlog stays in the subscription.
func MaxBuffered(n int) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetMaxBuffered(n) })
}

// MaxBundle bounds how many messages (default 10000) and how long (default
// 500ms) a reader emits before it checkpoints. Messages are acknowledged
// after the checkpoint, so smaller bundles acknowledge sooner.
func MaxBundle(records int, d time.Duration) ReadOption {
	return settingsOption(func(s *streamread.Settings) error { return s.SetMaxBundle(records, d) })
}

// SessionIdle is how long an unused reader session stays open on a worker
// before it is closed and its unacknowledged messages are nacked (default
// 5m).
func SessionIdle(d time.Duration) ReadOption {
	return readOption(optcheck.Positive("SessionIdle", d, func(c *readConfig) { c.SessionIdle = d }))
}
