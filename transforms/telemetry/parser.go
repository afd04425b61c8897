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
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

// AttrGateway is the attribute of a reading that a gateway (a batch
// element naming its device) or a Sparkplug B edge node (a device's
// message) published for a device behind it: the gateway's device id.
const AttrGateway = "gateway_id"

// latestEventTime bounds payload timestamps when a message has no receive
// time, so that every event time fits a Beam timestamp.
var latestEventTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// maxQuoted is how many bytes of a value a DeadLetter's Detail quotes.
const maxQuoted = 64

// Parser turns mqttio.Messages into Readings. It is the pure core of the
// Parse transform, safe for concurrent use, and never panics.
//
// A message's topic picks its format: the first of the Routes whose
// template matches it, else the TopicTemplate with the PayloadFormat. The
// template gives the device id and the kind (see TopicTemplate); a topic
// that matches none goes to the dead letters. Every payload must be at
// most MaxPayloadBytes. The formats:
//
// json (FormatJSON, the default): a JSON object (valid UTF-8).
//
//   - the TimestampField ("ts") is the event time: an RFC 3339 string, with
//     or without fractional seconds, or a JSON number of milliseconds since
//     the Unix epoch (integer or fraction). It must be no earlier than
//     EarliestEventTime (2000-01-01) and no later than the receive time plus
//     MaxClockSkew (24 h). Without the field the event time is the receive
//     time and the Reading's TimeSource is TimeFromReceived.
//   - every other number is a metric; strings and booleans ("true",
//     "false") are attributes; nulls are ignored;
//   - nested objects are flattened, their members named by the dotted
//     path: {"env":{"temp":21.5}} is the metric "env.temp". Arrays are
//     flattened too, their elements named by their index ({"accel":[0.1,
//     9.8]} is accel.0 and accel.1), unless Arrays is ArraysIgnored. An
//     object nested deeper than MaxDepth (8), or more than MaxMetrics (1000)
//     metrics, is a dead letter.
//   - when a name appears more than once, the last value wins, as in
//     encoding/json (a repeated nested object merges with the earlier one,
//     member by member).
//
// batch (FormatBatch): a JSON array of objects, or an object whose
// BatchField ("readings") is one; each element is a reading as in json,
// with its own timestamp, and at most MaxBatch (1000) elements. An element
// may name its device in its DeviceIDField ("device_id", a string or an
// integer), so that a gateway publishes for the devices behind it: that
// id must be usable as a topic level (no '/', '+', '#', NUL), and the
// reading's AttrGateway attribute is the topic's device id. In the object
// form, the object's timestamp is that of elements without their own, and
// its other numbers are a reading of the topic's device. A bad element is
// a dead letter (with that element's bytes) and the others are readings;
// its PayloadHash is the hash of the element's bytes.
//
// value (FormatValue): the payload is a plain number, or true or false (1
// and 0), the value of one metric named by the template's {metric} level
// (or else its kind). The event time is the receive time.
//
// influx (FormatInflux): InfluxDB line protocol, a point a line,
// "measurement[,tag=value...] field=value[,...] [timestamp]" (as Telegraf's
// MQTT output publishes it), at most MaxBatch lines. A field is named
// "measurement.field": floats, integers (1i) and unsigned integers (1u) are
// metrics, strings and booleans attributes; tags are attributes, except the
// DeviceIDField tag, which names the device (else the topic's) with the
// AttrGateway attribute as in batches. The timestamp is in InfluxPrecision
// units (nanoseconds), else the receive time. The lines of one device and
// timestamp make one reading; a bad line is a dead letter with its bytes.
//
// sparkplug_b (FormatSparkplugB): Sparkplug B's protobuf payloads on
// spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}], see
// ParseWithCommands for how it keeps each edge node's BIRTH in state and
// SparkplugDeviceID for the device ids. A Parser keeps that state in
// memory, for all the edge nodes it has parsed messages of.
//
// In every format, the message's MQTT 5 user properties are attributes of
// its readings too, under their names; a payload attribute of the same name
// wins, and of a property name given more than once the first value.
//
// Parse returns a DeadLetter instead of a Reading for anything else, with a
// Reason code and a Detail that names the field and value at fault.
type Parser struct {
	cfg    config
	routes []template
	ids    idTemplate

	spMu   sync.Mutex
	spMem  map[string]map[string]*spNode // Sparkplug B state, by group and edge node
	spScan *spDecoder
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
	p := &Parser{cfg: cfg}
	for _, r := range cfg.routes() {
		t, err := parseTemplate(r.Template, r.Format)
		if err != nil {
			return nil, fmt.Errorf("telemetry: option TopicTemplate or Route: %v", err)
		}
		p.routes = append(p.routes, t)
	}
	ids, err := parseIDTemplate(cfg.SparkplugDeviceID)
	if err != nil {
		return nil, fmt.Errorf("telemetry: option SparkplugDeviceID: %v", err)
	}
	p.ids = ids
	p.spScan = newSpDecoder(p)
	return p, nil
}

// envelope is a message with what the checks every format shares found:
// the receive time, and the route's format and topic fields.
type envelope struct {
	m        mqttio.Message
	received time.Time
	route    *template
	fields   topicFields
}

// Parse parses a message of a format that makes one reading per message
// (json, value): exactly one of the results is set, the Reading when the
// DeadLetter is nil. A DeadLetter keeps the message's topic, its payload
// bytes (not copied) and its receive time. For the other formats it returns
// the first reading or dead letter ParseAll gives (a zero Reading and nil
// for a message that gives neither, a Sparkplug B command).
//
// A message with a zero ReceivedAt has no receive time to go by: a Reading
// without a payload timestamp then has a zero EventTime, and payload
// timestamps are only bounded by EarliestEventTime and 2200-01-01.
func (p *Parser) Parse(m mqttio.Message) (Reading, *DeadLetter) {
	env, dl := p.envelope(m)
	if dl != nil {
		return Reading{}, dl
	}
	var r Reading
	switch env.route.format {
	case FormatJSON:
		r, dl = p.parseJSON(&env)
	case FormatValue:
		r, dl = p.parseValue(&env)
	default:
		rs, ds := p.parseMany(env, nil, nil)
		switch {
		case len(ds) > 0:
			return Reading{}, &ds[0]
		case len(rs) == 0:
			return Reading{}, nil
		}
		r = rs[0]
	}
	if dl != nil {
		return Reading{}, dl
	}
	return r, nil
}

// ParseAll parses a message of any format and appends its readings and
// dead letters to readings and deadLetters. A batch makes a reading per
// element, a Sparkplug B payload one per distinct timestamp of its
// metrics; a message can make both readings and dead letters (a batch with
// bad elements, Sparkplug B metrics of unsupported types, a seq gap), or
// neither (a Sparkplug B command or host state, which are not telemetry).
func (p *Parser) ParseAll(m mqttio.Message, readings []Reading, deadLetters []DeadLetter) ([]Reading, []DeadLetter) {
	env, dl := p.envelope(m)
	if dl != nil {
		return readings, append(deadLetters, *dl)
	}
	switch env.route.format {
	case FormatJSON, FormatValue:
		var r Reading
		if env.route.format == FormatJSON {
			r, dl = p.parseJSON(&env)
		} else {
			r, dl = p.parseValue(&env)
		}
		if dl != nil {
			return readings, append(deadLetters, *dl)
		}
		return append(readings, r), deadLetters
	}
	return p.parseMany(env, readings, deadLetters)
}

// parseMany parses the formats that make several readings a message. (env
// is a copy: a pointer would move the callers' to the heap.)
func (p *Parser) parseMany(e envelope, rs []Reading, ds []DeadLetter) ([]Reading, []DeadLetter) {
	env := &e
	switch env.route.format {
	case FormatBatch, FormatInflux:
		from := len(rs)
		if env.route.format == FormatBatch {
			rs, ds = p.parseBatch(env, rs, ds)
		} else {
			rs, ds = p.parseInflux(env, rs, ds)
		}
		env.addUserProperties(rs[from:])
		return rs, ds
	}
	t, dl := p.sparkplugTopic(env)
	if dl != nil {
		return rs, append(ds, *dl)
	}
	if !t.IsTelemetry() {
		return rs, ds
	}
	p.spMu.Lock()
	defer p.spMu.Unlock()
	if p.spMem == nil {
		p.spMem = map[string]map[string]*spNode{}
	}
	group := p.spMem[t.Group]
	if group == nil {
		group = map[string]*spNode{}
		p.spMem[t.Group] = group
	}
	n := group[t.EdgeNode]
	if n == nil {
		n = newSpNode()
		group[t.EdgeNode] = n
	}
	rs, ds, _ = p.spScan.apply(n, env, t, rs, ds)
	return rs, ds
}

// envelope makes the checks every format shares: the topic's route, its
// device id, the payload's size.
func (p *Parser) envelope(m mqttio.Message) (envelope, *DeadLetter) {
	env := envelope{m: m, received: m.ReceivedAt}
	if !env.received.IsZero() {
		env.received = env.received.UTC()
	}
	if !utf8.ValidString(m.Topic) {
		return env, p.dead(&env, ReasonInvalidUTF8, "topic %s is not valid UTF-8", quote(m.Topic))
	}
	for i := range p.routes {
		if f, ok := p.routes[i].match(m.Topic); ok {
			env.route, env.fields = &p.routes[i], f
			break
		}
	}
	device := env.fields.device
	switch {
	case env.route == nil:
		return env, p.dead(&env, ReasonNoDeviceID, "topic %s does not match %s", quote(m.Topic), p.templatesText())
	case env.route.format == FormatSparkplugB:
	case device == "":
		return env, p.dead(&env, ReasonNoDeviceID, "topic %s has an empty device id level (template %q)", quote(m.Topic), env.route.text)
	case strings.ContainsAny(device, "+#\x00"):
		return env, p.dead(&env, ReasonBadDeviceID, "device id %s in topic %s contains '+', '#' or NUL", quote(device), quote(m.Topic))
	}
	if len(m.Payload) > p.cfg.MaxPayloadBytes {
		return env, p.dead(&env, ReasonTooLarge, "payload is %d bytes, more than the limit of %d (option MaxPayloadBytes)", len(m.Payload), p.cfg.MaxPayloadBytes)
	}
	return env, nil
}

// templatesText names the topic templates for a Detail.
func (p *Parser) templatesText() string {
	rs := p.cfg.routes()
	if len(rs) == 1 {
		return fmt.Sprintf("the topic template %q", rs[0].Template)
	}
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = strconv.Quote(r.Template)
	}
	return "any of the topic templates " + strings.Join(names, ", ")
}

// dead makes the DeadLetter of the message.
func (p *Parser) dead(env *envelope, reason, format string, args ...any) *DeadLetter {
	return &DeadLetter{
		Topic:      env.m.Topic,
		Payload:    env.m.Payload,
		ReceivedAt: env.received,
		Reason:     reason,
		Detail:     fmt.Sprintf(format, args...),
	}
}

// failure is why a JSON object is not a reading.
type failure struct {
	reason, detail string
}

func fail(reason, format string, args ...any) *failure {
	return &failure{reason, fmt.Sprintf(format, args...)}
}

// checkJSON checks that the payload is JSON, for the json and batch
// formats.
func (p *Parser) checkJSON(env *envelope) *DeadLetter {
	b := env.m.Payload
	if !utf8.Valid(b) {
		return p.dead(env, ReasonInvalidUTF8, "payload is not valid UTF-8 (first bytes %s)", quote(string(b)))
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return p.dead(env, ReasonNotJSON, "payload is empty; want a JSON object such as {\"%s\":\"2024-05-01T12:00:00Z\",\"temperature\":21.5}", p.cfg.TimestampField)
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v) // for the error's words
		return p.dead(env, ReasonNotJSON, "payload is not JSON: %v (payload starts %s)", err, quote(string(b)))
	}
	return nil
}

// addUserProperties makes the message's MQTT 5 user properties attributes
// of each of rs, under their names: a payload attribute of the same name
// wins, and of a property name given more than once the first value.
func (env *envelope) addUserProperties(rs []Reading) {
	for i := range rs {
		env.addUserPropertiesTo(&rs[i])
	}
}

// addUserPropertiesTo is addUserProperties for one reading.
func (env *envelope) addUserPropertiesTo(r *Reading) {
	props := env.m.UserProperties
	for _, u := range props {
		if _, ok := r.Attributes[u.Name]; !ok {
			if r.Attributes == nil {
				r.Attributes = make(map[string]string, len(props))
			}
			r.Attributes[u.Name] = u.Value
		}
	}
}

// reading is the Reading of a message before its payload is read: at the
// receive time.
func (env *envelope) reading() Reading {
	return Reading{
		DeviceID:   env.fields.device,
		Kind:       env.fields.kind,
		Topic:      env.m.Topic,
		ReceivedAt: env.received,
		EventTime:  env.received,
		TimeSource: TimeFromReceived,
	}
}

func (p *Parser) parseJSON(env *envelope) (Reading, *DeadLetter) {
	if dl := p.checkJSON(env); dl != nil {
		return Reading{}, dl
	}
	if t := firstType(env.m.Payload); t != "object" {
		return Reading{}, p.dead(env, ReasonNotObject, "payload is a JSON %s, not an object (payload starts %s)", t, quote(string(env.m.Payload)))
	}
	r := env.reading()
	r.PayloadHash = hash(env.m.Payload)
	if _, _, f := p.decodeObject(env.m.Payload, &r, "", ""); f != nil {
		return Reading{}, p.dead(env, f.reason, "%s", f.detail)
	}
	env.addUserPropertiesTo(&r)
	return r, nil
}

// decodeObject reads the metrics, attributes and timestamp of the JSON
// object b (valid JSON) into r, whose event time stays as it is when b has
// no timestamp. deviceField, when not empty, names the member that holds
// the device id, returned with named true when b has it; skip, when not
// empty, names a top-level member to leave out.
func (p *Parser) decodeObject(b []byte, r *Reading, deviceField, skip string) (device string, named bool, f *failure) {
	// The walker holds the decoder and the reading by value: escape
	// analysis is not field-sensitive, so a pointer to them in the walker
	// would move them to the heap (an allocation each per message).
	w := walker{maxDepth: p.cfg.MaxDepth, arrays: p.cfg.Arrays == ArraysIndexed, skip: skip, skipping: skip != "", decode: true,
		dec: objectDecoder{p: p, r: *r, deviceField: deviceField, tsKind: -1}}
	w.walkObject(b)
	*r = w.dec.r
	d := &w.dec
	if len(r.Attributes) == 0 {
		r.Attributes = nil // emptied by a duplicate key
	}
	device, named = d.device, d.named
	switch {
	case d.badDevice != "":
		return device, named, fail(ReasonBadDeviceID, "device id field %q is %s; want a string or an integer", deviceField, d.badDevice)
	case w.deep != "":
		return device, named, fail(ReasonTooDeep, "%s nests deeper than %d levels (option MaxDepth)", quote(w.deep), p.cfg.MaxDepth)
	case d.tooMany:
		return device, named, fail(ReasonTooManyMetrics, "payload has more than %d metrics (option MaxMetrics; arrays are flattened unless option Arrays is %q)", p.cfg.MaxMetrics, ArraysIgnored)
	}
	if d.tsKind >= 0 {
		t, detail := p.timestamp(d.tsKind, d.tsString, d.tsRaw, r.ReceivedAt)
		if detail != "" {
			return device, named, fail(ReasonBadTimestamp, "%s", detail)
		}
		r.EventTime, r.TimeSource = t, TimeFromPayload
	}
	if len(d.nonFinite) > 0 {
		key := slices.Min(slices.Collect(maps.Keys(d.nonFinite)))
		return device, named, fail(ReasonNonFinite, "metric %s = %s does not fit a 64-bit float", quote(key), quote(d.nonFinite[key]))
	}
	if len(r.Metrics) == 0 {
		return device, named, fail(ReasonNoMetrics, "payload has no number besides %q; metrics must be JSON numbers, e.g. \"temperature\": 21.5 (payload starts %s)", p.cfg.TimestampField, quote(string(b)))
	}
	return device, named, nil
}

// objectDecoder receives the values of a JSON object for decodeObject.
type objectDecoder struct {
	p           *Parser
	r           Reading
	deviceField string

	tsKind    int // -1: no timestamp field
	tsString  string
	tsRaw     []byte
	nonFinite map[string]string // metric -> its JSON text
	device    string
	named     bool
	badDevice string
	tooMany   bool
}

// visit is the walker's visitFunc.
func (d *objectDecoder) visit(key string, kind int, s string, raw []byte) bool {
	r := &d.r
	if key == d.p.cfg.TimestampField {
		d.tsKind, d.tsString, d.tsRaw = kind, s, raw
		return true
	}
	if d.deviceField != "" && key == d.deviceField {
		d.device, d.named, d.badDevice = deviceOf(kind, s, raw)
		return true
	}
	// The last of duplicate keys wins: forget what an earlier one set.
	delete(r.Metrics, key)
	delete(r.Attributes, key)
	delete(d.nonFinite, key)
	switch kind {
	case valueNumber:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			if d.nonFinite == nil {
				d.nonFinite = map[string]string{}
			}
			d.nonFinite[key] = string(raw)
			return true
		}
		if r.Metrics == nil {
			r.Metrics = make(map[string]float64, 8)
		}
		r.Metrics[key] = f
		if len(r.Metrics) > d.p.cfg.MaxMetrics {
			d.tooMany = true
			return false
		}
	case valueString, valueBool:
		if r.Attributes == nil {
			r.Attributes = make(map[string]string, 4)
		}
		r.Attributes[key] = s
	}
	return true
}

// deviceOf is the device id of a batch element's device id member, or a
// description of why it is not one.
func deviceOf(kind int, s string, raw []byte) (device string, named bool, bad string) {
	switch kind {
	case valueString:
		return s, true, ""
	case valueNumber:
		if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return string(raw), true, ""
		}
		return "", true, "the number " + quote(string(raw))
	case valueBool:
		return "", true, "a JSON boolean"
	}
	return "", true, "a JSON " + s
}

// timestamp parses the timestamp field's value, returning a Detail when it
// is not acceptable.
func (p *Parser) timestamp(kind int, str string, raw []byte, received time.Time) (time.Time, string) {
	field := p.cfg.TimestampField
	earliest, latest := p.bounds(received)
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

// bounds are the earliest and latest event times a payload may give, for
// a message received at received.
func (p *Parser) bounds(received time.Time) (earliest, latest time.Time) {
	earliest, latest = p.cfg.EarliestEventTime, latestEventTime
	if !received.IsZero() {
		if l := received.Add(p.cfg.MaxClockSkew); l.Before(latest) {
			latest = l
		}
	}
	return earliest, latest
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
