package pubsubio

import (
	"time"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// WriteOption configures Write: the options below, and every Option. An
// option given an invalid value makes Write fail with an error that names
// the option.
type WriteOption interface {
	applyWrite(*writeConfig) error
}

// writeOption is a WriteOption that only Write takes.
type writeOption func(*writeConfig) error

func (o writeOption) applyWrite(c *writeConfig) error { return o(c) }

// writeConfig holds every setting of a Write. It travels inside the DoFn, so
// its fields are exported for serialization; users set them through options.
type writeConfig struct {
	clientConfig

	Ordering       bool
	BatchCount     int
	BatchBytes     int
	BatchDelay     time.Duration
	PublishTimeout time.Duration
}

func newWriteConfig(opts []WriteOption) (writeConfig, error) {
	cfg := writeConfig{
		BatchCount:     100,
		BatchBytes:     1e6,
		BatchDelay:     10 * time.Millisecond,
		PublishTimeout: 60 * time.Second,
	}
	err := optcheck.Apply("pubsubio", &cfg, opts, "WriteOption", WriteOption.applyWrite)
	return cfg, err
}

// Ordering turns message ordering on or off (default off). When on, the
// publisher is created with EnableMessageOrdering and messages with the same
// OrderingKey are delivered in the order they were published to
// subscriptions that have message ordering enabled. When off, OrderingKey is
// ignored.
func Ordering(on bool) WriteOption {
	return writeOption(func(c *writeConfig) error {
		c.Ordering = on
		return nil
	})
}

// Batching sets when the publisher sends a batch: at count messages (default
// 100, at most 1000), at bytes bytes (default 1e6, at most 1e7) or after
// delay (default 10ms), whichever comes first.
func Batching(count, bytes int, delay time.Duration) WriteOption {
	return writeOption(func(c *writeConfig) error {
		if count < 1 || count > 1000 {
			return optcheck.Errorf("Batching", "count must be between 1 and 1000, got %d", count)
		}
		if bytes < 1 || bytes > 1e7 {
			return optcheck.Errorf("Batching", "bytes must be between 1 and 1e7, got %d", bytes)
		}
		if delay <= 0 {
			return optcheck.Errorf("Batching", "delay must be positive, got %v", delay)
		}
		c.BatchCount, c.BatchBytes, c.BatchDelay = count, bytes, delay
		return nil
	})
}

// PublishTimeout bounds how long a publish may take, retries included, before
// it fails and with it the bundle (default 60s).
func PublishTimeout(d time.Duration) WriteOption {
	return writeOption(optcheck.Positive("PublishTimeout", d, func(c *writeConfig) { c.PublishTimeout = d }))
}
