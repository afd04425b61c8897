package aggregate

import (
	"fmt"
	"time"
)

// Window kinds of a configuration.
const (
	kindFixed   = "fixed"
	kindSliding = "sliding"
	kindSession = "session"
)

// Option configures PerWindow. An option given an invalid value makes
// PerWindow fail with an error that names the option.
type Option func(*config) error

// config is the windowing of a PerWindow. Users set it through Options.
type config struct {
	Kind            string
	Size            time.Duration // fixed and sliding windows
	Period          time.Duration // sliding windows
	Gap             time.Duration // session windows
	AllowedLateness time.Duration
	Shards          int // of the too-late filter; 0 means DefaultLateShards
}

// shards is the number of shards of the too-late filter.
func (c config) shards() int {
	if c.Shards == 0 {
		return DefaultLateShards
	}
	return c.Shards
}

// DefaultLateShards is the number of shards of the too-late filter without
// the LateShards option.
const DefaultLateShards = 16

// maxLateShards bounds LateShards.
const maxLateShards = 1 << 16

func defaultConfig() config {
	return config{Kind: kindFixed, Size: time.Minute}
}

func newConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return config{}, err
		}
	}
	return cfg, nil
}

// Fixed makes the windows fixed (tumbling) windows of the given size, aligned
// to the Unix epoch: [0, size), [size, 2*size), ... This is the default, with
// a size of one minute.
func Fixed(size time.Duration) Option {
	return func(c *config) error {
		if err := positive("Fixed", "size", size); err != nil {
			return err
		}
		*c = config{Kind: kindFixed, Size: size, AllowedLateness: c.AllowedLateness, Shards: c.Shards}
		return nil
	}
}

// Sliding makes the windows sliding windows of the given size, one starting
// every period, so that each reading falls into size/period windows (rounded
// up). The period must not exceed the size.
func Sliding(size, period time.Duration) Option {
	return func(c *config) error {
		if err := positive("Sliding", "size", size); err != nil {
			return err
		}
		if err := positive("Sliding", "period", period); err != nil {
			return err
		}
		if period > size {
			return fmt.Errorf("aggregate: Sliding: period %v is longer than size %v (readings between windows would be lost)", period, size)
		}
		*c = config{Kind: kindSliding, Size: size, Period: period, AllowedLateness: c.AllowedLateness, Shards: c.Shards}
		return nil
	}
}

// Session makes the windows session windows: per device, readings
// less than gap apart in event time fall into one window, which ends gap
// after its last reading. Late data can merge two sessions into one.
func Session(gap time.Duration) Option {
	return func(c *config) error {
		if err := positive("Session", "gap", gap); err != nil {
			return err
		}
		*c = config{Kind: kindSession, Gap: gap, AllowedLateness: c.AllowedLateness, Shards: c.Shards}
		return nil
	}
}

// AllowedLateness keeps a window open for late data for d after the
// watermark passes its end (default 0: late data is dropped). Each late
// reading within the lateness makes a new, late pane that includes all the
// window's readings so far; readings later than that are dropped by the
// runner.
func AllowedLateness(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("aggregate: AllowedLateness: %v is negative", d)
		}
		c.AllowedLateness = d
		return nil
	}
}

// LateShards sets how many keys (shards of device ids, default 16, at most
// 65536) the readings are spread over to catch those that come too late
// (see PerWindow) and, for fixed and sliding windows, to group a window's
// readings: one shard's readings of a window are grouped and aggregated on
// one worker. More shards spread the work over more workers (on Dataflow,
// give a large fleet's long windows a few shards per worker); fewer shards
// each see more windows, so they catch more too-late readings, and cost the
// runner fewer elements.
//
// Session windows are not checked for too-late readings unless LateShards
// is given: prism (v2.77.0) merges sessions only among the readings that
// reach its GroupByKey together, and the filter's shuffle delivers them in
// more pieces, so sessions that should merge stay apart. Give LateShards
// with Session on Dataflow, which merges sessions across deliveries.
func LateShards(n int) Option {
	return func(c *config) error {
		if n < 1 || n > maxLateShards {
			return fmt.Errorf("aggregate: LateShards: %d is not between 1 and %d", n, maxLateShards)
		}
		c.Shards = n
		return nil
	}
}

func positive(option, field string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("aggregate: %s: %s must be positive, got %v", option, field, d)
	}
	if d%time.Millisecond != 0 {
		return fmt.Errorf("aggregate: %s: %s %v is not a whole number of milliseconds (Beam's time resolution)", option, field, d)
	}
	return nil
}
