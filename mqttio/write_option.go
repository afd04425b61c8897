package mqttio

import (
	"time"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// WriteOption configures Write: the options below, and every Option (the
// connection and the QoS). An option given an invalid value makes Write fail
// with an error that names the option.
type WriteOption interface {
	applyWrite(*writeConfig) error
}

// writeOption is a WriteOption that only Write takes.
type writeOption func(*writeConfig) error

func (o writeOption) applyWrite(c *writeConfig) error { return o(c) }

// writeConfig holds every setting of a Write. It travels inside the DoFn, so
// its fields are exported for serialization; users set them through options.
type writeConfig struct {
	connConfig

	Retain        bool
	TopicTemplate string
	MaxPending    int
	PublishTries  int
	PublishWait   time.Duration
}

func newWriteConfig(opts []WriteOption) (writeConfig, error) {
	cfg := writeConfig{
		connConfig:   defaultConnConfig(),
		MaxPending:   1000,
		PublishTries: 5,
		PublishWait:  30 * time.Second,
	}
	if err := optcheck.Apply("mqttio", &cfg, opts, "WriteOption", WriteOption.applyWrite); err != nil {
		return cfg, err
	}
	return cfg, cfg.checkVersion()
}

// Retain sets the retain flag on published messages.
func Retain(retain bool) WriteOption {
	return writeOption(func(c *writeConfig) error {
		c.Retain = retain
		return nil
	})
}

// TopicTemplate publishes each Publication to a topic built from tmpl, e.g.
// "devices/{device_id}/commands": every {name} is replaced with
// Publication.Fields[name]. A value that is missing, empty, or contains '/',
// '+', '#' or NUL sends the element to the error output instead.
func TopicTemplate(tmpl string) WriteOption {
	return writeOption(func(c *writeConfig) error {
		if _, err := parseTemplate(tmpl); err != nil {
			return optcheck.Errorf("TopicTemplate", "%v", err)
		}
		c.TopicTemplate = tmpl
		return nil
	})
}

// MaxPending bounds the publishes a writer has in flight before it waits for
// the broker's acknowledgements (default 1000).
func MaxPending(n int) WriteOption {
	return writeOption(func(c *writeConfig) error {
		if n < 1 || n > 65535 {
			return optcheck.Errorf("MaxPending", "must be between 1 and 65535, got %d", n)
		}
		c.MaxPending = n
		return nil
	})
}

// PublishRetry sets how many times a publish is attempted (default 5) and how
// long each attempt waits for the broker (default 30s) before the bundle
// fails.
func PublishRetry(tries int, wait time.Duration) WriteOption {
	return writeOption(func(c *writeConfig) error {
		if tries < 1 {
			return optcheck.Errorf("PublishRetry", "tries must be at least 1, got %d", tries)
		}
		if wait <= 0 {
			return optcheck.Errorf("PublishRetry", "wait must be positive, got %v", wait)
		}
		c.PublishTries, c.PublishWait = tries, wait
		return nil
	})
}
