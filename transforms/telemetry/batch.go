package telemetry

import (
	"strings"
)

// parseBatch parses a batch payload (FormatBatch, see Parser): a reading per
// element, and one of the topic's device from the object around the array.
func (p *Parser) parseBatch(env *envelope, rs []Reading, ds []DeadLetter) ([]Reading, []DeadLetter) {
	if dl := p.checkJSON(env); dl != nil {
		return rs, append(ds, *dl)
	}
	b := env.m.Payload
	start := skipSpace(b, 0)
	base := env.reading()
	haveEnvelope := false
	switch b[start] {
	case '[':
	case '{':
		s, _, ok := member(b, p.cfg.BatchField)
		if !ok || b[s] != '[' {
			return rs, append(ds, *p.dead(env, ReasonNotBatch, "payload is an object without an array member %q (option BatchField); want [{...},...] or {%q:[{...},...]}", p.cfg.BatchField, p.cfg.BatchField))
		}
		// The object's timestamp is the elements' default, its numbers a
		// reading of the topic's device.
		gw := env.reading()
		gw.PayloadHash = hash(b)
		_, _, f := p.decodeObject(b, &gw, "", p.cfg.BatchField)
		switch {
		case f == nil:
			rs = append(rs, gw)
			haveEnvelope = true
		case f.reason != ReasonNoMetrics:
			return rs, append(ds, *p.dead(env, f.reason, "the object around the batch: %s", f.detail))
		}
		base.EventTime, base.TimeSource = gw.EventTime, gw.TimeSource
		start = s
	default:
		return rs, append(ds, *p.dead(env, ReasonNotBatch, "payload is a JSON %s; a batch is [{...},...] or {%q:[{...},...]}", firstType(b), p.cfg.BatchField))
	}

	n := 0
	forEachElement(b, start, func(int, int) bool {
		n++
		return n <= p.cfg.MaxBatch
	})
	switch {
	case n > p.cfg.MaxBatch:
		return rs, append(ds, *p.dead(env, ReasonTooLarge, "batch has more than %d elements (option MaxBatch)", p.cfg.MaxBatch))
	case n == 0 && !haveEnvelope:
		return rs, append(ds, *p.dead(env, ReasonNoMetrics, "batch has no elements"))
	}
	i := 0
	forEachElement(b, start, func(from, to int) bool {
		elem := b[from:to]
		r, f := p.element(env, base, elem)
		if f != nil {
			dl := p.dead(env, f.reason, "batch element %d of %d: %s", i, n, f.detail)
			dl.Payload = elem
			ds = append(ds, *dl)
		} else {
			rs = append(rs, r)
		}
		i++
		return true
	})
	return rs, ds
}

// element parses one batch element into a reading based on base.
func (p *Parser) element(env *envelope, base Reading, elem []byte) (Reading, *failure) {
	if t := firstType(elem); t != "object" {
		return Reading{}, fail(ReasonNotObject, "a JSON %s, not an object (%s)", t, quote(string(elem)))
	}
	r := base
	r.PayloadHash = hash(elem)
	device, named, f := p.decodeObject(elem, &r, p.cfg.DeviceIDField, "")
	if f != nil {
		return Reading{}, f
	}
	if !named {
		return r, nil
	}
	if device == "" || strings.ContainsAny(device, "/+#\x00") {
		return Reading{}, fail(ReasonBadDeviceID, "device id %s (field %q) is empty or contains '/', '+', '#' or NUL, so it cannot be a topic level", quote(device), p.cfg.DeviceIDField)
	}
	r.DeviceID = device
	if r.Attributes == nil {
		r.Attributes = make(map[string]string, 1)
	}
	r.Attributes[AttrGateway] = env.fields.device
	return r, nil
}
