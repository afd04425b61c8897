package telemetry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.Function1x2(encodeReading)
	register.Function1x2(decodeReading)
	beam.RegisterCoder(reflect.TypeOf((*Reading)(nil)).Elem(), encodeReading, decodeReading)
}

// readingCoderVersion starts every encoded Reading, so that a format change
// is detected instead of misread (update a running job only with the same
// version).
const readingCoderVersion = 1

// encodeReading is Reading's Beam coder: a compact binary form, several
// times cheaper than the schema coder Beam would otherwise use for a struct
// with maps (readings cross the runner once per message in PerWindow).
// Times keep their instant and zone offset (time.Time's binary form). Map
// order makes the encoding non-deterministic: a Reading cannot be a key.
func encodeReading(r Reading) ([]byte, error) {
	size := 64 + len(r.DeviceID) + len(r.Kind) + len(r.Topic) + len(r.TimeSource) + 16*len(r.Metrics)
	b := make([]byte, 0, size)
	b = append(b, readingCoderVersion)
	for _, s := range []string{r.DeviceID, r.Kind, r.Topic, r.TimeSource} {
		b = appendString(b, s)
	}
	var err error
	for _, t := range []time.Time{r.EventTime, r.ReceivedAt} {
		if b, err = t.AppendBinary(b); err != nil {
			return nil, fmt.Errorf("telemetry: encoding a Reading of %q: time %v: %w", r.DeviceID, t, err)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Metrics)))
	for name, v := range r.Metrics {
		b = appendString(b, name)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b = binary.AppendUvarint(b, uint64(len(r.Attributes)))
	for name, v := range r.Attributes {
		b = appendString(b, name)
		b = appendString(b, v)
	}
	return binary.LittleEndian.AppendUint64(b, r.PayloadHash), nil
}

// decodeReading is the inverse of encodeReading. Empty maps decode as nil.
func decodeReading(b []byte) (Reading, error) {
	d := decoder{b: b}
	if v := d.byte(); v != readingCoderVersion && d.err == nil {
		return Reading{}, fmt.Errorf("telemetry: decoding a Reading: coder version %d, want %d", v, readingCoderVersion)
	}
	r := Reading{DeviceID: d.string(), Kind: d.string(), Topic: d.string(), TimeSource: d.string()}
	r.EventTime, r.ReceivedAt = d.time(), d.time()
	if n := d.count(); n > 0 {
		r.Metrics = make(map[string]float64, n)
		for range n {
			name := d.string()
			r.Metrics[name] = math.Float64frombits(d.uint64())
		}
	}
	if n := d.count(); n > 0 {
		r.Attributes = make(map[string]string, n)
		for range n {
			name := d.string()
			r.Attributes[name] = d.string()
		}
	}
	r.PayloadHash = d.uint64()
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes left over", len(d.b))
	}
	if d.err != nil {
		return Reading{}, fmt.Errorf("telemetry: decoding a Reading: %w", d.err)
	}
	return r, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decoder reads what encodeReading appended; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("input ends early")

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count is a length that must fit in what is left (each item takes a byte
// at least).
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		if d.err == nil {
			d.err = errShort
		}
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	return string(d.take(d.count()))
}

func (d *decoder) uint64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// time reads a time.Time's binary form, whose length its version byte
// gives (15 bytes, 16 with seconds in the zone offset).
func (d *decoder) time() time.Time {
	if d.err != nil || len(d.b) == 0 {
		d.take(1)
		return time.Time{}
	}
	n := 15
	if d.b[0] == 2 {
		n = 16
	}
	var t time.Time
	if err := t.UnmarshalBinary(d.take(n)); err != nil && d.err == nil {
		d.err = err
	}
	return t
}
