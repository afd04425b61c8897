package telemetry

import (
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/internal/wire"
)

func init() {
	register.Function1x2(EncodeReading)
	register.Function1x2(DecodeReading)
	beam.RegisterCoder(reflect.TypeOf((*Reading)(nil)).Elem(), EncodeReading, DecodeReading)
}

// readingCoderVersion starts every encoded Reading, so that a format change
// is detected instead of misread (update a running job only with the same
// version).
const readingCoderVersion = 1

// EncodeReading is Reading's Beam coder (exported for composite coders,
// such as a batch of readings): a compact binary form, several
// times cheaper than the schema coder Beam would otherwise use for a struct
// with maps (readings cross the runner once per message in PerWindow).
// Times keep their instant and zone offset (time.Time's binary form). Map
// order makes the encoding non-deterministic: a Reading cannot be a key.
func EncodeReading(r Reading) ([]byte, error) {
	size := 64 + len(r.DeviceID) + len(r.Kind) + len(r.Topic) + len(r.TimeSource) + 16*len(r.Metrics)
	b := make([]byte, 0, size)
	b = append(b, readingCoderVersion)
	for _, s := range []string{r.DeviceID, r.Kind, r.Topic, r.TimeSource} {
		b = wire.AppendString(b, s)
	}
	var err error
	for _, t := range []time.Time{r.EventTime, r.ReceivedAt} {
		if b, err = wire.AppendTime(b, t); err != nil {
			return nil, fmt.Errorf("telemetry: encoding a Reading of %q: %w", r.DeviceID, err)
		}
	}
	b = wire.AppendUvarint(b, uint64(len(r.Metrics)))
	for name, v := range r.Metrics {
		b = wire.AppendFloat64(wire.AppendString(b, name), v)
	}
	b = wire.AppendUvarint(b, uint64(len(r.Attributes)))
	for name, v := range r.Attributes {
		b = wire.AppendString(wire.AppendString(b, name), v)
	}
	return wire.AppendUint64(b, r.PayloadHash), nil
}

// DecodeReading is the inverse of EncodeReading. Empty maps decode as nil.
func DecodeReading(b []byte) (Reading, error) {
	d := wire.NewReader(b)
	if v := d.Byte(); v != readingCoderVersion && d.Err() == nil {
		return Reading{}, fmt.Errorf("telemetry: decoding a Reading: coder version %d, want %d", v, readingCoderVersion)
	}
	r := Reading{DeviceID: d.String(), Kind: d.String(), Topic: d.String(), TimeSource: d.String()}
	r.EventTime, r.ReceivedAt = d.Time(), d.Time()
	if n := d.Count(); n > 0 {
		r.Metrics = make(map[string]float64, n)
		for range n {
			name := d.String()
			r.Metrics[name] = d.Float64()
		}
	}
	r.Attributes = d.StringMap()
	r.PayloadHash = d.Uint64()
	if err := d.Err(); err != nil {
		return Reading{}, fmt.Errorf("telemetry: decoding a Reading: %w", err)
	}
	return r, nil
}
