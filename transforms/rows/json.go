package rows

import (
	"time"

	"github.com/mqttbeam/mqttbeam/internal/jsonappend"
)

// AppendJSON appends the row as json.Marshal encodes it, byte for byte,
// without reflection: transforms/jsonl writes aggregates and readings with
// it.
func (a Aggregate) AppendJSON(b []byte) ([]byte, error) {
	e := &encoder{b: b}
	e.string(`{"device_id":`, a.DeviceID)
	e.string(`,"metric":`, a.Metric)
	e.time(`,"window_start":`, a.WindowStart)
	e.time(`,"window_end":`, a.WindowEnd)
	e.int(`,"count":`, a.Count)
	e.float(`,"min":`, a.Min)
	e.float(`,"max":`, a.Max)
	e.float(`,"sum":`, a.Sum)
	e.float(`,"mean":`, a.Mean)
	e.float(`,"first":`, a.First)
	e.float(`,"last":`, a.Last)
	e.time(`,"first_time":`, a.FirstTime)
	e.time(`,"last_time":`, a.LastTime)
	e.string(`,"pane":`, a.Pane)
	e.int(`,"pane_index":`, a.PaneIndex)
	e.b = jsonappend.Bool(append(e.b, `,"known_device":`...), a.KnownDevice)
	e.optionalString(`,"site":`, a.Site)
	e.optionalString(`,"model":`, a.Model)
	e.optionalString(`,"owner":`, a.Owner)
	if len(a.Device) > 0 {
		e.attributes(`,"device":`, a.Device)
	}
	return e.end()
}

// AppendJSON appends the row as json.Marshal encodes it, byte for byte,
// without reflection.
func (r Reading) AppendJSON(b []byte) ([]byte, error) {
	e := &encoder{b: b}
	e.string(`{"device_id":`, r.DeviceID)
	e.optionalString(`,"kind":`, r.Kind)
	e.string(`,"topic":`, r.Topic)
	e.time(`,"event_time":`, r.EventTime)
	e.time(`,"received_at":`, r.ReceivedAt)
	e.string(`,"time_source":`, r.TimeSource)
	e.b = append(e.b, `,"metrics":`...)
	if r.Metrics == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i, m := range r.Metrics {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.string(`{"name":`, m.Name)
			e.float(`,"value":`, m.Value)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	if len(r.Attributes) > 0 {
		e.attributes(`,"attributes":`, r.Attributes)
	}
	return e.end()
}

// encoder appends the fields of a JSON object, each after its key (with
// the comma before it, as the caller writes it), and keeps the first error.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) string(key, s string) {
	e.b = jsonappend.String(append(e.b, key...), s)
}

// optionalString writes nothing for an empty string (omitempty).
func (e *encoder) optionalString(key, s string) {
	if s != "" {
		e.string(key, s)
	}
}

func (e *encoder) int(key string, i int64) {
	e.b = jsonappend.Int(append(e.b, key...), i)
}

func (e *encoder) float(key string, f float64) {
	if e.err == nil {
		e.b, e.err = jsonappend.Float(append(e.b, key...), f)
	}
}

func (e *encoder) time(key string, t time.Time) {
	if e.err == nil {
		e.b, e.err = jsonappend.Time(append(e.b, key...), t)
	}
}

func (e *encoder) attributes(key string, attrs []Attribute) {
	e.b = append(append(e.b, key...), '[')
	for i, a := range attrs {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.string(`{"name":`, a.Name)
		e.string(`,"value":`, a.Value)
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ']')
}

// end closes the object.
func (e *encoder) end() ([]byte, error) {
	if e.err != nil {
		return e.b, e.err
	}
	return append(e.b, '}'), nil
}
