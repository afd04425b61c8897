package telemetry

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// parseValue parses a plain value payload (FormatValue, see Parser).
func (p *Parser) parseValue(env *envelope) (Reading, *DeadLetter) {
	name := env.fields.metric
	if !env.route.hasMetric {
		name = env.fields.kind
	}
	if name == "" {
		return Reading{}, p.dead(env, ReasonNoMetricName, "topic %s has an empty metric level (template %q)", quote(env.m.Topic), env.route.text)
	}
	b := env.m.Payload
	if !utf8.Valid(b) {
		return Reading{}, p.dead(env, ReasonInvalidUTF8, "payload is not valid UTF-8 (first bytes %s)", quote(string(b)))
	}
	s := bytes.TrimSpace(b)
	var v float64
	switch string(s) {
	case "true":
		v = 1
	case "false":
		v = 0
	default:
		if len(s) == 0 || s[0] != '-' && (s[0] < '0' || s[0] > '9') || !json.Valid(s) {
			return Reading{}, p.dead(env, ReasonNotNumber, "payload %s is not a number, true or false (the value format has one plain value a message, e.g. 21.5)", quote(string(b)))
		}
		var err error
		v, err = strconv.ParseFloat(string(s), 64)
		if err != nil || math.IsInf(v, 0) {
			return Reading{}, p.dead(env, ReasonNonFinite, "metric %s = %s does not fit a 64-bit float", quote(name), quote(string(s)))
		}
	}
	r := env.reading()
	r.Metrics = map[string]float64{name: v}
	r.PayloadHash = hash(b)
	env.addUserPropertiesTo(&r)
	return r, nil
}
