package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// Defaults of the Options.
const (
	DefaultTopicTemplate   = "devices/{device_id}/telemetry/#"
	DefaultTimestampField  = "ts"
	DefaultMaxPayloadBytes = 64 << 10
	DefaultMaxClockSkew    = 24 * time.Hour
)

// DefaultEarliestEventTime is the earliest event time a payload timestamp may
// have by default: 2000-01-01T00:00:00Z. Earlier ones are almost always a
// device whose clock was never set (1970) or a timestamp in seconds rather
// than milliseconds.
var DefaultEarliestEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Option configures a Parser (NewParser) or the Parse transform. An option
// given an invalid value makes NewParser or Parse fail with an error that
// names the option.
type Option func(*config) error

// config holds the settings of a Parser. It travels inside the DoFn of Parse,
// so its fields are exported for serialization; users set them through Options.
type config struct {
	TopicTemplate     string
	TimestampField    string
	MaxPayloadBytes   int
	EarliestEventTime time.Time
	MaxClockSkew      time.Duration
}

func defaultConfig() config {
	return config{
		TopicTemplate:     DefaultTopicTemplate,
		TimestampField:    DefaultTimestampField,
		MaxPayloadBytes:   DefaultMaxPayloadBytes,
		EarliestEventTime: DefaultEarliestEventTime,
		MaxClockSkew:      DefaultMaxClockSkew,
	}
}

func newConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			return cfg, errors.New("telemetry: nil Option")
		}
		if err := opt(&cfg); err != nil {
			return cfg, fmt.Errorf("telemetry: %w", err)
		}
	}
	return cfg, nil
}

// TopicTemplate sets the topic levels a message's topic must have and where
// the device id and kind are, e.g. "devices/{device_id}/telemetry/#" (the
// default) or "devices/{device_id}/telemetry/{kind}".
//
// Levels are separated by '/'. A literal level must equal the topic's level;
// "{device_id}" (required, once) captures one level as the device id;
// "{kind}" (optional, once) captures one level as the kind; '+' matches any
// one level; '#', last only, matches zero or more levels, and when the
// template has no "{kind}" the first level it matches is the kind. A message
// whose topic does not match goes to the dead letters (ReasonNoDeviceID).
func TopicTemplate(template string) Option {
	return func(c *config) error {
		if _, err := parseTemplate(template); err != nil {
			return optcheck.Errorf("TopicTemplate", "%v", err)
		}
		c.TopicTemplate = template
		return nil
	}
}

// TimestampField sets the name of the payload's top-level field that holds
// the event time (default "ts"): an RFC 3339 string or a number of
// milliseconds since the Unix epoch.
func TimestampField(name string) Option {
	return func(c *config) error {
		if name == "" {
			return optcheck.Errorf("TimestampField", "must not be empty")
		}
		if !utf8.ValidString(name) {
			return optcheck.Errorf("TimestampField", "must be valid UTF-8")
		}
		c.TimestampField = name
		return nil
	}
}

// MaxPayloadBytes sets the largest payload parsed (default 64 KiB); a larger
// one goes to the dead letters (ReasonTooLarge).
func MaxPayloadBytes(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return optcheck.Errorf("MaxPayloadBytes", "must be positive, got %d", n)
		}
		c.MaxPayloadBytes = n
		return nil
	}
}

// EarliestEventTime sets the earliest event time a payload timestamp may
// have (default DefaultEarliestEventTime, 2000-01-01); an earlier one goes to
// the dead letters (ReasonBadTimestamp).
func EarliestEventTime(t time.Time) Option {
	return func(c *config) error {
		if t.IsZero() {
			return optcheck.Errorf("EarliestEventTime", "must not be the zero time")
		}
		if t.Year() < 1970 || t.Year() >= 2200 {
			return optcheck.Errorf("EarliestEventTime", "must be between 1970 and 2200, got %v", t)
		}
		c.EarliestEventTime = t.UTC()
		return nil
	}
}

// MaxClockSkew sets how far ahead of the receive time a payload timestamp may
// be (default 24 hours); a later one goes to the dead letters
// (ReasonBadTimestamp).
func MaxClockSkew(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return optcheck.Errorf("MaxClockSkew", "must not be negative, got %v", d)
		}
		c.MaxClockSkew = d
		return nil
	}
}

// Kinds of template levels.
const (
	levelLiteral = iota
	levelDevice
	levelKind
	levelPlus
	levelHash
)

type level struct {
	kind    int
	literal string
}

// template is a parsed TopicTemplate.
type template struct {
	levels  []level
	hasKind bool // a {kind} placeholder
}

func parseTemplate(s string) (template, error) {
	var t template
	if s == "" {
		return t, errors.New("must not be empty")
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return t, fmt.Errorf("%q is not valid UTF-8 or contains NUL", s)
	}
	parts := strings.Split(s, "/")
	devices := 0
	for i, p := range parts {
		var l level
		switch {
		case p == "{device_id}":
			l.kind = levelDevice
			devices++
		case p == "{kind}":
			if t.hasKind {
				return t, fmt.Errorf("%q has {kind} more than once", s)
			}
			l.kind, t.hasKind = levelKind, true
		case p == "+":
			l.kind = levelPlus
		case p == "#":
			if i != len(parts)-1 {
				return t, fmt.Errorf("%q has '#' before its last level", s)
			}
			l.kind = levelHash
		case strings.ContainsAny(p, "+#{}"):
			return t, fmt.Errorf("%q: level %q must be a literal, {device_id}, {kind}, '+' or '#'", s, p)
		default:
			l.literal = p
		}
		t.levels = append(t.levels, l)
	}
	if devices != 1 {
		return t, fmt.Errorf("%q must have {device_id} exactly once as a whole level, has it %d times", s, devices)
	}
	return t, nil
}

// match returns the device id and kind of topic, or ok false when the topic
// does not match the template.
func (t *template) match(topic string) (device, kind string, ok bool) {
	rest, atEnd := topic, false
	for _, l := range t.levels {
		if l.kind == levelHash {
			if !atEnd && !t.hasKind {
				kind, _, _ = strings.Cut(rest, "/")
			}
			return device, kind, true
		}
		if atEnd {
			return "", "", false
		}
		var seg string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		} else {
			seg, rest, atEnd = rest, "", true
		}
		switch l.kind {
		case levelLiteral:
			if seg != l.literal {
				return "", "", false
			}
		case levelDevice:
			device = seg
		case levelKind:
			kind = seg
		}
	}
	return device, kind, atEnd
}
