package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

// Reason codes of a DeadLetter.
const (
	// ReasonNoDeviceID: the topic does not match the TopicTemplate, or its
	// device id level is empty.
	ReasonNoDeviceID = "no_device_id"
	// ReasonBadDeviceID: the device id contains '+', '#' or NUL, so it could
	// not be used as a topic level (e.g. to send the device commands).
	ReasonBadDeviceID = "bad_device_id"
	// ReasonInvalidUTF8: the topic or the payload is not valid UTF-8.
	ReasonInvalidUTF8 = "invalid_utf8"
	// ReasonTooLarge: the payload is larger than MaxPayloadBytes.
	ReasonTooLarge = "too_large"
	// ReasonNotJSON: the payload is empty, is not JSON, or has data after
	// the JSON value.
	ReasonNotJSON = "not_json"
	// ReasonNotObject: the payload is JSON but not an object.
	ReasonNotObject = "not_object"
	// ReasonBadTimestamp: the timestamp field is neither an RFC 3339 string
	// nor a number of epoch milliseconds, or is before EarliestEventTime or
	// more than MaxClockSkew after the receive time.
	ReasonBadTimestamp = "bad_timestamp"
	// ReasonNonFinite: a metric does not fit a float64 (e.g. 1e999, which
	// would be +Inf).
	ReasonNonFinite = "non_finite"
	// ReasonNoMetrics: the object has no top-level number besides the
	// timestamp.
	ReasonNoMetrics = "no_metrics"
)

// Reasons lists every reason code, in the order Parser checks them.
var Reasons = []string{
	ReasonInvalidUTF8, ReasonNoDeviceID, ReasonBadDeviceID, ReasonTooLarge,
	ReasonNotJSON, ReasonNotObject, ReasonBadTimestamp, ReasonNonFinite,
	ReasonNoMetrics,
}

// latestEventTime bounds payload timestamps when a message has no receive
// time, so that every event time fits a Beam timestamp.
var latestEventTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// maxQuoted is how many bytes of a value a DeadLetter's Detail quotes.
const maxQuoted = 64

// Parser turns mqttio.Messages into Readings. It is the pure core of the
// Parse transform, safe for concurrent use, and never panics.
//
// The topic must match the TopicTemplate, which gives the device id and the
// kind. The payload must be a JSON object (valid UTF-8, at most
// MaxPayloadBytes):
//
//   - the TimestampField ("ts") is the event time: an RFC 3339 string, with
//     or without fractional seconds, or a JSON number of milliseconds since
//     the Unix epoch (integer or fraction). It must be no earlier than
//     EarliestEventTime (2000-01-01) and no later than the receive time plus
//     MaxClockSkew (24 h). Without the field the event time is the receive
//     time and the Reading's TimeSource is TimeFromReceived.
//   - every other top-level number is a metric;
//   - top-level strings and booleans ("true", "false") are attributes;
//   - nulls, nested objects and arrays are ignored (not flattened);
//   - when a key appears more than once, the last value wins, as in
//     encoding/json;
//   - the message's MQTT 5 user properties are attributes too, under their
//     names; a payload attribute of the same name wins, and of a property
//     name given more than once the first value.
//
// Parse returns a DeadLetter instead of a Reading for anything else, with a
// Reason code and a Detail that names the field and value at fault.
type Parser struct {
	cfg  config
	tmpl template
}

// NewParser returns a Parser with the options applied, or an error naming
// the first invalid option.
func NewParser(opts ...Option) (*Parser, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newParser(cfg)
}

func newParser(cfg config) (*Parser, error) {
	t, err := parseTemplate(cfg.TopicTemplate)
	if err != nil {
		return nil, fmt.Errorf("telemetry: option TopicTemplate: %v", err)
	}
	return &Parser{cfg: cfg, tmpl: t}, nil
}

// Parse parses one message. Exactly one of the results is set: the Reading
// when the DeadLetter is nil. A DeadLetter keeps the message's topic, its
// payload bytes (not copied) and its receive time.
//
// A message with a zero ReceivedAt has no receive time to go by: a Reading
// without a payload timestamp then has a zero EventTime, and payload
// timestamps are only bounded by EarliestEventTime and 2200-01-01.
func (p *Parser) Parse(m mqttio.Message) (Reading, *DeadLetter) {
	received := m.ReceivedAt
	if !received.IsZero() {
		received = received.UTC()
	}
	dead := func(reason, format string, args ...any) (Reading, *DeadLetter) {
		return Reading{}, &DeadLetter{
			Topic:      m.Topic,
			Payload:    m.Payload,
			ReceivedAt: received,
			Reason:     reason,
			Detail:     fmt.Sprintf(format, args...),
		}
	}

	if !utf8.ValidString(m.Topic) {
		return dead(ReasonInvalidUTF8, "topic %s is not valid UTF-8", quote(m.Topic))
	}
	device, kind, ok := p.tmpl.match(m.Topic)
	switch {
	case !ok:
		return dead(ReasonNoDeviceID, "topic %s does not match the topic template %q", quote(m.Topic), p.cfg.TopicTemplate)
	case device == "":
		return dead(ReasonNoDeviceID, "topic %s has an empty device id level (template %q)", quote(m.Topic), p.cfg.TopicTemplate)
	case strings.ContainsAny(device, "+#\x00"):
		return dead(ReasonBadDeviceID, "device id %s in topic %s contains '+', '#' or NUL", quote(device), quote(m.Topic))
	}
	if len(m.Payload) > p.cfg.MaxPayloadBytes {
		return dead(ReasonTooLarge, "payload is %d bytes, more than the limit of %d (option MaxPayloadBytes)", len(m.Payload), p.cfg.MaxPayloadBytes)
	}
	if !utf8.Valid(m.Payload) {
		return dead(ReasonInvalidUTF8, "payload is not valid UTF-8 (first bytes %s)", quote(string(m.Payload)))
	}
	if len(bytes.TrimSpace(m.Payload)) == 0 {
		return dead(ReasonNotJSON, "payload is empty; want a JSON object such as {\"%s\":\"2024-05-01T12:00:00Z\",\"temperature\":21.5}", p.cfg.TimestampField)
	}

	if !json.Valid(m.Payload) {
		var v any
		err := json.Unmarshal(m.Payload, &v) // for the error's words
		return dead(ReasonNotJSON, "payload is not JSON: %v (payload starts %s)", err, quote(string(m.Payload)))
	}
	if t := firstType(m.Payload); t != "object" {
		return dead(ReasonNotObject, "payload is a JSON %s, not an object (payload starts %s)", t, quote(string(m.Payload)))
	}

	r := Reading{
		DeviceID:    device,
		Kind:        kind,
		Topic:       m.Topic,
		ReceivedAt:  received,
		EventTime:   received,
		TimeSource:  TimeFromReceived,
		PayloadHash: hash(m.Payload),
	}
	tsKind, tsString, tsRaw := -1, "", []byte(nil)
	var nonFinite map[string]string // metric -> its JSON text
	walkObject(m.Payload, func(key string, kind int, s string, raw []byte) {
		if key == p.cfg.TimestampField {
			tsKind, tsString, tsRaw = kind, s, raw
			return
		}
		// The last of duplicate keys wins: forget what an earlier one set.
		delete(r.Metrics, key)
		delete(r.Attributes, key)
		delete(nonFinite, key)
		switch kind {
		case valueNumber:
			f, err := strconv.ParseFloat(string(raw), 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				if nonFinite == nil {
					nonFinite = map[string]string{}
				}
				nonFinite[key] = string(raw)
				return
			}
			if r.Metrics == nil {
				r.Metrics = make(map[string]float64, 8)
			}
			r.Metrics[key] = f
		case valueString, valueBool:
			if r.Attributes == nil {
				r.Attributes = make(map[string]string, 4)
			}
			r.Attributes[key] = s
		}
	})
	for _, u := range m.UserProperties {
		if _, ok := r.Attributes[u.Name]; !ok {
			if r.Attributes == nil {
				r.Attributes = make(map[string]string, len(m.UserProperties))
			}
			r.Attributes[u.Name] = u.Value
		}
	}
	if len(r.Attributes) == 0 {
		r.Attributes = nil // emptied by a duplicate key
	}
	if tsKind >= 0 {
		t, detail := p.timestamp(tsKind, tsString, tsRaw, received)
		if detail != "" {
			return dead(ReasonBadTimestamp, "%s", detail)
		}
		r.EventTime, r.TimeSource = t, TimeFromPayload
	}
	if len(nonFinite) > 0 {
		key := slices.Min(slices.Collect(maps.Keys(nonFinite)))
		return dead(ReasonNonFinite, "metric %s = %s does not fit a 64-bit float", quote(key), quote(nonFinite[key]))
	}
	if len(r.Metrics) == 0 {
		return dead(ReasonNoMetrics, "payload has no top-level number besides %q; metrics must be JSON numbers, e.g. \"temperature\": 21.5 (payload starts %s)", p.cfg.TimestampField, quote(string(m.Payload)))
	}
	return r, nil
}

// timestamp parses the timestamp field's value, returning a Detail when it
// is not acceptable.
func (p *Parser) timestamp(kind int, str string, raw []byte, received time.Time) (time.Time, string) {
	field := p.cfg.TimestampField
	earliest := p.cfg.EarliestEventTime
	latest := latestEventTime
	if !received.IsZero() {
		if l := received.Add(p.cfg.MaxClockSkew); l.Before(latest) {
			latest = l
		}
	}
	var t time.Time
	switch kind {
	case valueString:
		var err error
		t, err = time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return t, fmt.Sprintf("timestamp field %q = %s is not an RFC 3339 time such as \"2024-05-01T12:00:00.123Z\" nor a number of epoch milliseconds", field, quote(str))
		}
	case valueNumber:
		s := string(raw)
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			if ms < earliest.UnixMilli() || ms > latest.UnixMilli() {
				return t, outOfRange(field, s, earliest, latest)
			}
			t = time.UnixMilli(ms)
			break
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return t, fmt.Sprintf("timestamp field %q = %s is not a finite number of epoch milliseconds", field, quote(s))
		}
		if f < float64(earliest.UnixMilli()) || f > float64(latest.UnixMilli()) {
			return t, outOfRange(field, s, earliest, latest)
		}
		whole := math.Floor(f) // f*1e6 would lose the fraction's precision
		t = time.UnixMilli(int64(whole)).Add(time.Duration(math.Round((f - whole) * 1e6)))
	default:
		typ := str
		if kind == valueBool {
			typ = "boolean"
		}
		return t, fmt.Sprintf("timestamp field %q is a JSON %s; want an RFC 3339 string or a number of epoch milliseconds", field, typ)
	}
	t = t.UTC()
	if t.Before(earliest) || t.After(latest) {
		return t, outOfRange(field, quote(t.Format(time.RFC3339Nano)), earliest, latest)
	}
	return t, ""
}

func outOfRange(field, value string, earliest, latest time.Time) string {
	return fmt.Sprintf("timestamp field %q = %s is outside %s .. %s (before EarliestEventTime, or more than MaxClockSkew after the receive time; a number must be milliseconds, not seconds)",
		field, value, earliest.Format(time.RFC3339), latest.Format(time.RFC3339))
}

// quote quotes s for a Detail, cut to maxQuoted bytes on a rune boundary.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// hash is FNV-1a 64 (hash/fnv's New64a, without its allocation).
func hash(b []byte) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	return h
}
