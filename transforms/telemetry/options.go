package telemetry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// Payload formats, for PayloadFormat and Route.
const (
	// FormatJSON is one JSON object a message: the default.
	FormatJSON = "json"
	// FormatBatch is a JSON array of objects, or an object whose
	// BatchField is one, each element a reading.
	FormatBatch = "batch"
	// FormatValue is a plain number, true or false, named by the topic.
	FormatValue = "value"
	// FormatSparkplugB is Sparkplug B's protobuf payloads on its
	// spBv1.0/... topics.
	FormatSparkplugB = "sparkplug_b"
	// FormatInflux is InfluxDB line protocol, as Telegraf publishes it.
	FormatInflux = "influx"
)

// Formats lists the payload formats.
var Formats = []string{FormatJSON, FormatBatch, FormatValue, FormatSparkplugB, FormatInflux}

// Defaults of the Options.
const (
	DefaultTopicTemplate   = "devices/{device_id}/telemetry/#"
	DefaultTimestampField  = "ts"
	DefaultMaxPayloadBytes = 64 << 10
	DefaultMaxClockSkew    = 24 * time.Hour
	DefaultMaxDepth        = 8
	DefaultMaxMetrics      = 1000
	DefaultBatchField      = "readings"
	DefaultDeviceIDField   = "device_id"
	DefaultMaxBatch        = 1000
	// DefaultSparkplugTemplate is the topic template of PayloadFormat
	// sparkplug_b when no TopicTemplate is given: the whole namespace.
	DefaultSparkplugTemplate = sparkplug.Namespace + "/#"
	// DefaultSparkplugDeviceID makes a Sparkplug B device's id
	// "group/edge_node/device" and an edge node's "group/edge_node".
	DefaultSparkplugDeviceID = "{group_id}/{edge_node_id}/{device_id}"
)

// Array handling of JSON payloads (option Arrays).
const (
	// ArraysIndexed flattens an array's elements like an object's members,
	// named by their index: {"accel":[0.1,9.8]} is accel.0 and accel.1.
	ArraysIndexed = "indexed"
	// ArraysIgnored ignores arrays (and what they hold).
	ArraysIgnored = "ignored"
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

// config holds the settings of a Parser. It travels inside the DoFns of
// Parse, so its fields are exported for serialization; users set them
// through Options.
type config struct {
	TopicTemplate     string
	Format            string
	Routes            []route
	TimestampField    string
	MaxPayloadBytes   int
	EarliestEventTime time.Time
	MaxClockSkew      time.Duration
	MaxDepth          int
	Arrays            string
	MaxMetrics        int
	BatchField        string
	DeviceIDField     string
	MaxBatch          int
	SparkplugDeviceID string
	RebirthCooldown   time.Duration
	InfluxPrecision   time.Duration

	templateSet bool // TopicTemplate was given
}

// route is a topic template and the format of the payloads of the topics it
// matches.
type route struct {
	Template string
	Format   string
}

func defaultConfig() config {
	return config{
		TopicTemplate:     DefaultTopicTemplate,
		Format:            FormatJSON,
		TimestampField:    DefaultTimestampField,
		MaxPayloadBytes:   DefaultMaxPayloadBytes,
		EarliestEventTime: DefaultEarliestEventTime,
		MaxClockSkew:      DefaultMaxClockSkew,
		MaxDepth:          DefaultMaxDepth,
		Arrays:            ArraysIndexed,
		MaxMetrics:        DefaultMaxMetrics,
		BatchField:        DefaultBatchField,
		DeviceIDField:     DefaultDeviceIDField,
		MaxBatch:          DefaultMaxBatch,
		SparkplugDeviceID: DefaultSparkplugDeviceID,
		InfluxPrecision:   time.Nanosecond,
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
	if cfg.Format == FormatSparkplugB && !cfg.templateSet {
		cfg.TopicTemplate = DefaultSparkplugTemplate
	}
	if _, err := parseTemplate(cfg.TopicTemplate, cfg.Format); err != nil {
		name := "TopicTemplate"
		if !cfg.templateSet {
			name = "PayloadFormat"
		}
		return cfg, fmt.Errorf("telemetry: %w", optcheck.Errorf(name, "%v", err))
	}
	if cfg.RebirthCooldown > 0 && !cfg.hasSparkplug() {
		return cfg, fmt.Errorf("telemetry: %w", optcheck.Errorf("RebirthRequests", "needs a %s format (PayloadFormat or Route)", FormatSparkplugB))
	}
	return cfg, nil
}

// routes are the Routes and then the TopicTemplate with the PayloadFormat,
// in the order they are tried.
func (c *config) routes() []route {
	return append(slices.Clip(c.Routes), route{c.TopicTemplate, c.Format})
}

func (c *config) hasSparkplug() bool {
	return slices.ContainsFunc(c.routes(), func(r route) bool { return r.Format == FormatSparkplugB })
}

func checkFormat(name, format string) error {
	if !slices.Contains(Formats, format) {
		return optcheck.Errorf(name, "format %q is not one of %s", format, strings.Join(Formats, ", "))
	}
	return nil
}

// TopicTemplate sets the topic levels a message's topic must have and where
// the device id and kind are, e.g. "devices/{device_id}/telemetry/#" (the
// default) or "devices/{device_id}/telemetry/{kind}". Its payloads are in
// the PayloadFormat; Route adds templates of other formats.
//
// Levels are separated by '/'. A literal level must equal the topic's level;
// "{device_id}" (required, once) captures one level as the device id;
// "{kind}" (optional, once) captures one level as the kind; "{metric}"
// (format value only, once) captures the metric's name; '+' matches any
// one level; '#', last only, matches zero or more levels, and when the
// template has no "{kind}" the first level it matches is the kind. A message
// whose topic does not match goes to the dead letters (ReasonNoDeviceID).
//
// A sparkplug_b template has no placeholders: its first level is
// "spBv1.0", and the ids come from the Sparkplug B topic (see
// SparkplugDeviceID), e.g. "spBv1.0/#" (the default with PayloadFormat
// sparkplug_b) or "spBv1.0/plant-1/#".
func TopicTemplate(template string) Option {
	return func(c *config) error {
		if template == "" {
			return optcheck.Errorf("TopicTemplate", "must not be empty")
		}
		c.TopicTemplate, c.templateSet = template, true
		return nil
	}
}

// PayloadFormat sets the format of the payloads of the TopicTemplate's
// topics: FormatJSON (the default), FormatBatch, FormatValue or
// FormatSparkplugB. See Parser for each.
func PayloadFormat(format string) Option {
	return func(c *config) error {
		if err := checkFormat("PayloadFormat", format); err != nil {
			return err
		}
		c.Format = format
		return nil
	}
}

// Route sends the messages whose topic matches template (see
// TopicTemplate) to the decoder of format, for brokers that carry several
// kinds of payloads. Routes are tried in the order given, before the
// TopicTemplate, and the first that matches decides, e.g.
//
//	telemetry.Parse(s, msgs,
//		telemetry.Route("gateways/{device_id}/telemetry", telemetry.FormatBatch),
//		telemetry.Route("devices/{device_id}/values/{metric}", telemetry.FormatValue),
//		telemetry.Route("spBv1.0/#", telemetry.FormatSparkplugB),
//		telemetry.TopicTemplate("devices/{device_id}/telemetry/#")) // JSON
func Route(template, format string) Option {
	return func(c *config) error {
		if err := checkFormat("Route", format); err != nil {
			return err
		}
		if _, err := parseTemplate(template, format); err != nil {
			return optcheck.Errorf("Route", "%v", err)
		}
		c.Routes = append(c.Routes, route{template, format})
		return nil
	}
}

// TimestampField sets the name of the payload's field that holds the event
// time (default "ts"): an RFC 3339 string or a number of milliseconds since
// the Unix epoch. A dotted name ("meta.time") names a nested member.
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
	return positiveInt("MaxPayloadBytes", n, func(c *config) { c.MaxPayloadBytes = n })
}

// MaxDepth sets how deep a JSON payload may nest objects and arrays
// (default 8; the payload's own object is depth 1, so {"env":{"t":1}} has
// depth 2). A deeper payload goes to the dead letters (ReasonTooDeep).
func MaxDepth(n int) Option {
	return positiveInt("MaxDepth", n, func(c *config) { c.MaxDepth = n })
}

// MaxMetrics sets the most metrics one reading may have (default 1000); a
// payload with more goes to the dead letters (ReasonTooManyMetrics).
func MaxMetrics(n int) Option {
	return positiveInt("MaxMetrics", n, func(c *config) { c.MaxMetrics = n })
}

// MaxBatch sets the most elements a batch payload may have (default 1000);
// a larger batch goes to the dead letters (ReasonTooLarge).
func MaxBatch(n int) Option {
	return positiveInt("MaxBatch", n, func(c *config) { c.MaxBatch = n })
}

func positiveInt(name string, n int, set func(*config)) Option {
	return func(c *config) error {
		if n <= 0 {
			return optcheck.Errorf(name, "must be positive, got %d", n)
		}
		set(c)
		return nil
	}
}

// Arrays sets what JSON arrays become: ArraysIndexed (the default), whose
// elements are flattened like members named by their index, or
// ArraysIgnored.
func Arrays(mode string) Option {
	return func(c *config) error {
		if mode != ArraysIndexed && mode != ArraysIgnored {
			return optcheck.Errorf("Arrays", "%q is not %q or %q", mode, ArraysIndexed, ArraysIgnored)
		}
		c.Arrays = mode
		return nil
	}
}

// BatchField sets the member of a batch object that holds its array of
// readings (default "readings"); a batch may also be the array itself.
func BatchField(name string) Option {
	return fieldName("BatchField", name, func(c *config) { c.BatchField = name })
}

// DeviceIDField sets the member of a batch element (or the tag of an
// influx line) that names the device it is about (default "device_id"), so
// that a gateway can publish for the devices behind it; e.g. "host" for
// Telegraf. An element without it is about the topic's device.
func DeviceIDField(name string) Option {
	return fieldName("DeviceIDField", name, func(c *config) { c.DeviceIDField = name })
}

func fieldName(option, name string, set func(*config)) Option {
	return func(c *config) error {
		if name == "" || !utf8.ValidString(name) {
			return optcheck.Errorf(option, "%q is not a non-empty UTF-8 name", name)
		}
		set(c)
		return nil
	}
}

// SparkplugDeviceID sets how a Sparkplug B message's device id is made from
// its topic's ids: a template of "{group_id}" (optional), "{edge_node_id}"
// and "{device_id}" (required, once each) and literal text, by default
// DefaultSparkplugDeviceID, "{group_id}/{edge_node_id}/{device_id}". An edge
// node's own messages (NBIRTH, NDATA, NDEATH) have no device: their id is
// the template without "{device_id}" and the literal text just before it
// (after it, when it comes first): "plant-1/edge-7" by default.
//
// Device ids with '/' (as the default's) cannot be a topic level: rules
// refuse to send them device commands on devices/{device_id}/commands. Use
// e.g. "{edge_node_id}.{device_id}" for ids that can.
func SparkplugDeviceID(template string) Option {
	return func(c *config) error {
		if _, err := parseIDTemplate(template); err != nil {
			return optcheck.Errorf("SparkplugDeviceID", "%v", err)
		}
		c.SparkplugDeviceID = template
		return nil
	}
}

// RebirthRequests makes ParseWithCommands ask a Sparkplug B edge node to
// publish its BIRTHs again (an NCMD with "Node Control/Rebirth" true, see
// sparkplug.RebirthRequest) when its state is unknown or broken: a DATA
// before its BIRTH, a seq gap, an unknown alias. It asks at most once per
// cooldown and edge node, by receive time. Without this option (the
// default) the job only reads: a primary host application (e.g. a SCADA
// system) usually owns rebirths, and requests from several hosts at once
// can flood a plant network.
func RebirthRequests(cooldown time.Duration) Option {
	return optcheck.Positive("RebirthRequests", cooldown, func(c *config) { c.RebirthCooldown = cooldown })
}

// InfluxPrecision sets the unit of influx timestamps: time.Nanosecond (the
// default, as InfluxDB's), time.Microsecond, time.Millisecond or
// time.Second.
func InfluxPrecision(unit time.Duration) Option {
	return func(c *config) error {
		switch unit {
		case time.Nanosecond, time.Microsecond, time.Millisecond, time.Second:
			c.InfluxPrecision = unit
			return nil
		}
		return optcheck.Errorf("InfluxPrecision", "%v is not 1ns, 1µs, 1ms or 1s", unit)
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
	return optcheck.NonNegative("MaxClockSkew", d, func(c *config) { c.MaxClockSkew = d })
}
