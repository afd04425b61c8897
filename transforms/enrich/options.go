package enrich

import (
	"errors"
	"fmt"
	"time"
)

// Option configures Join. An option given an invalid value makes Join fail
// with an error that names the option.
type Option func(*config) error

// config is the refresh schedule of a Join. Users set it through Options.
type config struct {
	Every time.Duration // zero: load once
	Until time.Time     // zero: refresh for as long as the job runs
	// From is when the reloads start, rounded down to a multiple of
	// Every (zero: the time the pipeline is constructed). Tests set it.
	From time.Time
}

func newConfig(opts []Option) (config, error) {
	var cfg config
	for _, o := range opts {
		if o == nil {
			return config{}, errors.New("enrich: nil Option")
		}
		if err := o(&cfg); err != nil {
			return config{}, err
		}
	}
	if !cfg.Until.IsZero() && cfg.Every == 0 {
		return config{}, errors.New("enrich: RefreshUntil: needs Refresh")
	}
	return cfg, nil
}

// Refresh reloads the registry every period of event time (and of wall
// time: the reloads are driven by the worker clock), so that a streaming
// job sees changes to the registry without a restart. The period must be a
// positive whole number of milliseconds. Without Refresh the registry is
// loaded once, when the job starts. See Join for which load a window sees.
func Refresh(every time.Duration) Option {
	return func(c *config) error {
		if every <= 0 {
			return fmt.Errorf("enrich: Refresh: period must be positive, got %v", every)
		}
		if every%time.Millisecond != 0 {
			return fmt.Errorf("enrich: Refresh: period %v is not a whole number of milliseconds (Beam's time resolution)", every)
		}
		c.Every = every
		return nil
	}
}

// RefreshUntil stops the reloads at end (default: they go on for as long as
// the job runs). A job whose other sources stop (e.g. a bounded local run
// on prism) finishes only once the reloads have stopped too.
func RefreshUntil(end time.Time) Option {
	return func(c *config) error {
		if end.IsZero() {
			return errors.New("enrich: RefreshUntil: end is the zero time")
		}
		c.Until = end
		return nil
	}
}
