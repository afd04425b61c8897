package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// parseInflux parses an InfluxDB line protocol payload (FormatInflux, see
// Parser): a reading per device and timestamp, merging the lines that share
// them.
func (p *Parser) parseInflux(env *envelope, rs []Reading, ds []DeadLetter) ([]Reading, []DeadLetter) {
	b := env.m.Payload
	if !utf8.Valid(b) {
		return rs, append(ds, *p.dead(env, ReasonInvalidUTF8, "payload is not valid UTF-8 (first bytes %s)", quote(string(b))))
	}
	n := 0
	for line := range bytes.Lines(b) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
			n++
		}
	}
	switch {
	case n == 0:
		return rs, append(ds, *p.dead(env, ReasonNotLineProtocol, "payload has no line; want e.g. env,device_id=s1 temperature=21.5 1714564800000000000"))
	case n > p.cfg.MaxBatch:
		return rs, append(ds, *p.dead(env, ReasonTooLarge, "payload has %d lines, more than %d (option MaxBatch)", n, p.cfg.MaxBatch))
	}
	start, i := len(rs), 0
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		i++
		pt, f := p.influxLine(line, env)
		if f == nil {
			f = p.mergePoint(env, &rs, start, pt)
		}
		if f != nil {
			dl := p.dead(env, f.reason, "line %d of %d: %s", i, n, f.detail)
			dl.Payload = line
			ds = append(ds, *dl)
		}
	}
	return rs, ds
}

// point is one line of line protocol.
type point struct {
	measurement string
	device      string // the DeviceIDField tag, or ""
	tags        map[string]string
	metrics     map[string]float64
	attributes  map[string]string
	at          time.Time
	timed       bool // the line has a timestamp
}

// mergePoint adds pt to the message's reading of its device and time,
// appending one when there is none yet.
func (p *Parser) mergePoint(env *envelope, rs *[]Reading, start int, pt point) *failure {
	device := env.fields.device
	if pt.device != "" {
		if strings.ContainsAny(pt.device, "/+#\x00") {
			return fail(ReasonBadDeviceID, "device id %s (tag %q) contains '/', '+', '#' or NUL, so it cannot be a topic level", quote(pt.device), p.cfg.DeviceIDField)
		}
		device = pt.device
	}
	at, source := env.received, TimeFromReceived
	if pt.timed {
		at, source = pt.at, TimeFromPayload
	}
	var r *Reading
	for i := start; i < len(*rs); i++ {
		if q := &(*rs)[i]; q.DeviceID == device && q.EventTime.Equal(at) {
			r = q
			break
		}
	}
	if r == nil {
		if len(pt.metrics) > p.cfg.MaxMetrics {
			return fail(ReasonTooManyMetrics, "more than %d metrics (option MaxMetrics)", p.cfg.MaxMetrics)
		}
		*rs = append(*rs, env.reading())
		r = &(*rs)[len(*rs)-1]
		r.DeviceID, r.EventTime, r.TimeSource = device, at, source
		r.PayloadHash = hash(env.m.Payload)
	} else if len(r.Metrics)+len(pt.metrics) > p.cfg.MaxMetrics {
		return fail(ReasonTooManyMetrics, "more than %d metrics of %s at one time (option MaxMetrics)", p.cfg.MaxMetrics, quote(device))
	}
	for k, v := range pt.metrics {
		if r.Metrics == nil {
			r.Metrics = make(map[string]float64, len(pt.metrics))
		}
		r.Metrics[k] = v
	}
	add := func(k, v string) {
		if r.Attributes == nil {
			r.Attributes = map[string]string{}
		}
		r.Attributes[k] = v
	}
	for k, v := range pt.tags {
		add(k, v)
	}
	for k, v := range pt.attributes {
		add(k, v)
	}
	if pt.device != "" {
		add(AttrGateway, env.fields.device)
	}
	return nil
}

// influxLine parses one line: measurement[,tag=value...] field=value[,...] [timestamp].
func (p *Parser) influxLine(line []byte, env *envelope) (point, *failure) {
	var pt point
	s := string(line)
	head, rest, ok := cutUnescaped(s, ' ')
	if !ok {
		return pt, fail(ReasonNotLineProtocol, "%s has no fields; want measurement[,tag=value] field=value [timestamp]", quote(s))
	}
	measurement, tags, _ := cutUnescaped(head, ',')
	if measurement == "" {
		return pt, fail(ReasonNotLineProtocol, "%s has no measurement", quote(s))
	}
	pt.measurement = unescape(measurement)
	for tags != "" {
		var tag string
		tag, tags, _ = cutUnescaped(tags, ',')
		k, v, ok := cutUnescaped(tag, '=')
		if !ok || k == "" || v == "" {
			return pt, fail(ReasonNotLineProtocol, "tag %s of %s is not key=value", quote(tag), quote(s))
		}
		k, v = unescape(k), unescape(v)
		if k == p.cfg.DeviceIDField {
			pt.device = v
			continue
		}
		if pt.tags == nil {
			pt.tags = map[string]string{}
		}
		pt.tags[k] = v
	}
	fields, ts, err := splitFields(strings.TrimLeft(rest, " "))
	if err != "" {
		return pt, fail(ReasonNotLineProtocol, "%s: %s", quote(s), err)
	}
	for _, field := range fields {
		k, v, _ := cutUnescaped(field, '=')
		name := pt.measurement + "." + unescape(k)
		if f := pt.fieldValue(name, v); f != nil {
			return pt, f
		}
	}
	if len(pt.metrics)+len(pt.attributes) == 0 {
		return pt, fail(ReasonNotLineProtocol, "%s has no fields", quote(s))
	}
	if ts = strings.TrimSpace(ts); ts != "" {
		t, detail := p.influxTime(ts, env.received)
		if detail != "" {
			return pt, fail(ReasonBadTimestamp, "%s", detail)
		}
		pt.at, pt.timed = t, true
	}
	return pt, nil
}

// fieldValue adds one field's value: numbers are metrics, strings and
// booleans attributes.
func (pt *point) fieldValue(name, v string) *failure {
	setMetric := func(f float64) {
		if pt.metrics == nil {
			pt.metrics = map[string]float64{}
		}
		pt.metrics[name] = f
	}
	setAttr := func(s string) {
		if pt.attributes == nil {
			pt.attributes = map[string]string{}
		}
		pt.attributes[name] = s
	}
	switch {
	case v == "":
		return fail(ReasonNotLineProtocol, "field %s has no value", quote(name))
	case v[0] == '"':
		if len(v) < 2 || v[len(v)-1] != '"' {
			return fail(ReasonNotLineProtocol, "field %s: string %s is not closed", quote(name), quote(v))
		}
		setAttr(stringUnescaper.Replace(v[1 : len(v)-1]))
		return nil
	}
	switch v {
	case "t", "T", "true", "True", "TRUE":
		setAttr("true")
		return nil
	case "f", "F", "false", "False", "FALSE":
		setAttr("false")
		return nil
	}
	var f float64
	switch v[len(v)-1] {
	case 'i':
		n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
		if err != nil {
			return fail(ReasonNotLineProtocol, "field %s = %s is not a 64-bit integer", quote(name), quote(v))
		}
		f = float64(n)
	case 'u':
		n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
		if err != nil {
			return fail(ReasonNotLineProtocol, "field %s = %s is not a 64-bit unsigned integer", quote(name), quote(v))
		}
		f = float64(n)
	default:
		// Line protocol floats are decimal: strconv also takes hex, '_',
		// Inf and NaN, which InfluxDB refuses.
		var err error
		if strings.ContainsAny(v, "_xXpPnN") {
			err = strconv.ErrSyntax
		} else {
			f, err = strconv.ParseFloat(v, 64)
		}
		if errors.Is(err, strconv.ErrRange) && !math.IsInf(f, 0) {
			err = nil // a tiny number, rounded to 0 as encoding/json does
		}
		switch {
		case errors.Is(err, strconv.ErrRange):
			return fail(ReasonNonFinite, "metric %s = %s does not fit a 64-bit float", quote(name), quote(v))
		case err != nil:
			return fail(ReasonNotLineProtocol, "field %s = %s is not a float, an integer (i), an unsigned integer (u), a string or a boolean", quote(name), quote(v))
		}
	}
	setMetric(f)
	return nil
}

// influxTime is a line's timestamp, an integer in InfluxPrecision units
// since the Unix epoch.
func (p *Parser) influxTime(ts string, received time.Time) (time.Time, string) {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Sprintf("timestamp %s is not an integer number of %v since the epoch (option InfluxPrecision)", quote(ts), p.cfg.InfluxPrecision)
	}
	unit := int64(p.cfg.InfluxPrecision)
	if n > math.MaxInt64/unit || n < math.MinInt64/unit {
		return time.Time{}, fmt.Sprintf("timestamp %s is out of range for %v units (option InfluxPrecision)", quote(ts), p.cfg.InfluxPrecision)
	}
	t := time.Unix(0, n*unit).UTC()
	earliest, latest := p.bounds(received)
	if t.Before(earliest) || t.After(latest) {
		return t, fmt.Sprintf("timestamp %s (%s) is outside %s .. %s (before EarliestEventTime, or more than MaxClockSkew after the receive time; option InfluxPrecision is %v)",
			quote(ts), t.Format(time.RFC3339Nano), earliest.Format(time.RFC3339), latest.Format(time.RFC3339), p.cfg.InfluxPrecision)
	}
	return t, ""
}

// splitFields splits a line's field set from its timestamp, at the first
// space outside a quoted string value, and the fields at their commas.
func splitFields(s string) (fields []string, ts, problem string) {
	inString, escaped, from := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && c == ',':
			fields = append(fields, s[from:i])
			from = i + 1
		case !inString && c == ' ':
			return append(fields, s[from:i]), s[i+1:], checkFields(append(fields, s[from:i]))
		}
	}
	if inString {
		return nil, "", "a string field value is not closed"
	}
	fields = append(fields, s[from:])
	return fields, "", checkFields(fields)
}

func checkFields(fields []string) string {
	for _, f := range fields {
		if k, _, ok := cutUnescaped(f, '='); !ok || k == "" {
			return fmt.Sprintf("field %s is not key=value", quote(f))
		}
	}
	return ""
}

// cutUnescaped is strings.Cut at the first sep not escaped by a backslash.
func cutUnescaped(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// unescape removes the backslashes of escaped commas, spaces and equals
// signs (in measurements, tag keys and values, and field keys).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return keyUnescaper.Replace(s)
}

// The unescapers of line protocol's keys and string field values.
var (
	keyUnescaper    = strings.NewReplacer(`\,`, ",", `\ `, " ", `\=`, "=", `\\`, `\`)
	stringUnescaper = strings.NewReplacer(`\"`, `"`, `\\`, `\`)
)
