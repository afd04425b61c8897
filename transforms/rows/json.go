package rows

import (
	"github.com/mqttbeam/mqttbeam/internal/jsonappend"
)

// AppendJSON appends the row as json.Marshal encodes it, byte for byte,
// without reflection: transforms/jsonl writes aggregates and readings with
// it.
func (a Aggregate) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"device_id":`...)
	b = jsonappend.String(b, a.DeviceID)
	b = append(b, `,"metric":`...)
	b = jsonappend.String(b, a.Metric)
	b = append(b, `,"window_start":`...)
	if b, err = jsonappend.Time(b, a.WindowStart); err != nil {
		return b, err
	}
	b = append(b, `,"window_end":`...)
	if b, err = jsonappend.Time(b, a.WindowEnd); err != nil {
		return b, err
	}
	b = append(b, `,"count":`...)
	b = jsonappend.Int(b, a.Count)
	for _, f := range [...]struct {
		key string
		v   float64
	}{{`,"min":`, a.Min}, {`,"max":`, a.Max}, {`,"sum":`, a.Sum}, {`,"mean":`, a.Mean}, {`,"first":`, a.First}, {`,"last":`, a.Last}} {
		b = append(b, f.key...)
		if b, err = jsonappend.Float(b, f.v); err != nil {
			return b, err
		}
	}
	b = append(b, `,"first_time":`...)
	if b, err = jsonappend.Time(b, a.FirstTime); err != nil {
		return b, err
	}
	b = append(b, `,"last_time":`...)
	if b, err = jsonappend.Time(b, a.LastTime); err != nil {
		return b, err
	}
	b = append(b, `,"pane":`...)
	b = jsonappend.String(b, a.Pane)
	b = append(b, `,"pane_index":`...)
	b = jsonappend.Int(b, a.PaneIndex)
	b = append(b, `,"known_device":`...)
	b = jsonappend.Bool(b, a.KnownDevice)
	b = appendOptionalString(b, `,"site":`, a.Site)
	b = appendOptionalString(b, `,"model":`, a.Model)
	b = appendOptionalString(b, `,"owner":`, a.Owner)
	if len(a.Device) > 0 {
		b = appendAttributes(append(b, `,"device":`...), a.Device)
	}
	return append(b, '}'), nil
}

// AppendJSON appends the row as json.Marshal encodes it, byte for byte,
// without reflection.
func (r Reading) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"device_id":`...)
	b = jsonappend.String(b, r.DeviceID)
	b = appendOptionalString(b, `,"kind":`, r.Kind)
	b = append(b, `,"topic":`...)
	b = jsonappend.String(b, r.Topic)
	b = append(b, `,"event_time":`...)
	if b, err = jsonappend.Time(b, r.EventTime); err != nil {
		return b, err
	}
	b = append(b, `,"received_at":`...)
	if b, err = jsonappend.Time(b, r.ReceivedAt); err != nil {
		return b, err
	}
	b = append(b, `,"time_source":`...)
	b = jsonappend.String(b, r.TimeSource)
	b = append(b, `,"metrics":`...)
	if r.Metrics == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, m := range r.Metrics {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = jsonappend.String(b, m.Name)
			b = append(b, `,"value":`...)
			if b, err = jsonappend.Float(b, m.Value); err != nil {
				return b, err
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(r.Attributes) > 0 {
		b = appendAttributes(append(b, `,"attributes":`...), r.Attributes)
	}
	return append(b, '}'), nil
}

// appendOptionalString appends a key and a string unless the string is
// empty (omitempty).
func appendOptionalString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return jsonappend.String(append(b, key...), s)
}

func appendAttributes(b []byte, attrs []Attribute) []byte {
	b = append(b, '[')
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = jsonappend.String(b, a.Name)
		b = append(b, `,"value":`...)
		b = jsonappend.String(b, a.Value)
		b = append(b, '}')
	}
	return append(b, ']')
}
