package pubsubio

import (
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// Option configures Read or Write. Options that only make sense for one of
// them say so and are ignored by the other. An option given an invalid value
// makes Read or Write fail with an error that names the option.
type Option func(*config) error

// config holds every setting of a Read or Write. It travels inside the DoFns,
// so its fields are exported for serialization; users set them through Options.
type config struct {
	// Endpoint, when set, is a host:port reached over plaintext gRPC without
	// credentials (pstest, the Pub/Sub emulator).
	Endpoint string

	// Write.
	Ordering       bool
	BatchCount     int
	BatchBytes     int
	BatchDelay     time.Duration
	PublishTimeout time.Duration

	// Read.
	Readers           int
	MaxRecords        int64
	MaxReadTime       time.Duration
	MaxOutOfOrderness time.Duration
	IdleWatermark     time.Duration
	WatermarkStep     time.Duration
	MaxBuffered       int
	MaxBundleSize     int
	MaxBundleTime     time.Duration
	SessionIdle       time.Duration
}

func defaultConfig() config {
	return config{
		BatchCount:     100,
		BatchBytes:     1e6,
		BatchDelay:     10 * time.Millisecond,
		PublishTimeout: 60 * time.Second,
		Readers:        1,
		IdleWatermark:  time.Second,
		WatermarkStep:  time.Second,
		MaxBuffered:    1000,
		MaxBundleSize:  10000,
		MaxBundleTime:  500 * time.Millisecond,
		SessionIdle:    5 * time.Minute,
	}
}

func newConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			return cfg, errors.New("pubsubio: nil Option")
		}
		if err := opt(&cfg); err != nil {
			return cfg, fmt.Errorf("pubsubio: %w", err)
		}
	}
	return cfg, nil
}

// Endpoint sends every request to hostPort over plaintext gRPC without
// credentials, for pstest or the Pub/Sub emulator in tests and local demos.
// Never point it at a server across a network you do not trust: nothing is
// encrypted. Without it, the clients reach Google Cloud over TLS with the
// application default credentials (PUBSUB_EMULATOR_HOST, honoured by the
// client library, works too).
func Endpoint(hostPort string) Option {
	return func(c *config) error {
		host, port, err := net.SplitHostPort(hostPort)
		if err != nil || host == "" || port == "" {
			return optcheck.Errorf("Endpoint", "want host:port, got %q", hostPort)
		}
		c.Endpoint = hostPort
		return nil
	}
}

// Ordering turns message ordering on or off (Write only; default off). When
// on, the publisher is created with EnableMessageOrdering and messages with
// the same OrderingKey are delivered in the order they were published to
// subscriptions that have message ordering enabled. When off, OrderingKey is
// ignored.
func Ordering(on bool) Option {
	return func(c *config) error {
		c.Ordering = on
		return nil
	}
}

// Batching sets when the publisher sends a batch (Write only): at count
// messages (default 100, at most 1000), at bytes bytes (default 1e6, at most
// 1e7) or after delay (default 10ms), whichever comes first.
func Batching(count, bytes int, delay time.Duration) Option {
	return func(c *config) error {
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
	}
}

// PublishTimeout bounds how long a publish may take, retries included, before
// it fails and with it the bundle (Write only; default 60s).
func PublishTimeout(d time.Duration) Option {
	return optcheck.Positive("PublishTimeout", d, func(c *config) { c.PublishTimeout = d })
}

// Readers starts n readers on the subscription (Read only; default 1), each
// with its own streaming pull; Pub/Sub balances the messages across them.
func Readers(n int) Option {
	return intInRange("Readers", n, 1, 1000, func(c *config) { c.Readers = n })
}

// MaxRecords makes the read bounded (Read only): each reader stops after
// emitting n messages.
func MaxRecords(n int64) Option {
	return intInRange("MaxRecords", n, 1, math.MaxInt64, func(c *config) { c.MaxRecords = n })
}

// MaxReadTime makes the read bounded (Read only): the readers stop this long
// after they started. Windows still open then fire.
func MaxReadTime(d time.Duration) Option {
	return optcheck.Positive("MaxReadTime", d, func(c *config) { c.MaxReadTime = d })
}

// MaxOutOfOrderness is how far behind the newest publish time seen a message
// may be without being late (Read only; default 0): the watermark trails the
// newest publish time by this bound. Pub/Sub does not deliver in publish
// order (redeliveries in particular), so set it to the lateness your windows
// should absorb.
func MaxOutOfOrderness(d time.Duration) Option {
	return optcheck.NonNegative("MaxOutOfOrderness", d, func(c *config) { c.MaxOutOfOrderness = d })
}

// WatermarkStep makes the watermark advance in whole steps of d since the
// Unix epoch (Read only; default 1s; 0: every millisecond). Windows that end
// on a whole step close as early as with an exact watermark, while the
// stages downstream see one watermark change per step instead of one per
// bundle: prism (v2.77.0) rescans a GroupByKey's pending elements on every
// change, which made it the largest cost of a windowed job.
func WatermarkStep(d time.Duration) Option {
	return optcheck.NonNegative("WatermarkStep", d, func(c *config) { c.WatermarkStep = d })
}

// IdleWatermark is how long a reader waits without messages before it
// advances the watermark to the current time minus MaxOutOfOrderness (Read
// only; default 1s), so that windows close on a quiet subscription.
func IdleWatermark(d time.Duration) Option {
	return optcheck.Positive("IdleWatermark", d, func(c *config) { c.IdleWatermark = d })
}

// MaxBuffered bounds the messages a reader has received but not yet emitted
// (Read only; default 1000, at most 1e6). When the buffer is full the reader stops
// pulling, and the backlog stays in the subscription.
func MaxBuffered(n int) Option {
	return intInRange("MaxBuffered", n, 1, 1e6, func(c *config) { c.MaxBuffered = n })
}

// MaxBundle bounds how many messages (default 10000) and how long (default
// 500ms) a reader emits before it checkpoints (Read only). Messages are
// acknowledged after the checkpoint, so smaller bundles acknowledge sooner.
func MaxBundle(records int, d time.Duration) Option {
	return func(c *config) error {
		if records < 1 {
			return optcheck.Errorf("MaxBundle", "records must be at least 1, got %d", records)
		}
		if d <= 0 {
			return optcheck.Errorf("MaxBundle", "duration must be positive, got %v", d)
		}
		c.MaxBundleSize, c.MaxBundleTime = records, d
		return nil
	}
}

// SessionIdle is how long an unused reader session stays open on a worker
// before it is closed and its unacknowledged messages are nacked (Read only;
// default 5m).
func SessionIdle(d time.Duration) Option {
	return optcheck.Positive("SessionIdle", d, func(c *config) { c.SessionIdle = d })
}

// intInRange is an Option that sets n with set when lo <= n <= hi.
func intInRange[N int | int64](name string, n, lo, hi N, set func(*config)) Option {
	return func(c *config) error {
		if n < lo || n > hi {
			return optcheck.Errorf(name, "must be between %d and %d, got %d", lo, hi, n)
		}
		set(c)
		return nil
	}
}
