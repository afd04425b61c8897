package aggregate

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/internal/wire"
)

func init() {
	register.Function1x1(encodeSample)
	register.Function1x2(decodeSample)
	beam.RegisterCoder(reflect.TypeOf((*sample)(nil)).Elem(), encodeSample, decodeSample)
}

// sample is what a reading brings to its device's windows: its event time,
// payload hash and finite metric values.
type sample struct {
	Time   int64 // event time, Unix nanoseconds
	Hash   uint64
	Values []metricValue
}

// encodeSample is sample's Beam coder: every reading crosses the runner's
// GroupByKey as a sample, and a compact form is much cheaper there (for the
// runner too, which then only skips a length-prefixed blob) than Beam's
// schema coder.
func encodeSample(s sample) []byte {
	b := make([]byte, 0, 17+24*len(s.Values))
	b = wire.AppendUint64(b, uint64(s.Time))
	b = wire.AppendUint64(b, s.Hash)
	b = wire.AppendUvarint(b, uint64(len(s.Values)))
	for _, v := range s.Values {
		b = wire.AppendFloat64(wire.AppendString(b, v.Metric), v.Value)
	}
	return b
}

// decodeSample is the inverse of encodeSample.
func decodeSample(b []byte) (sample, error) {
	r := wire.NewReader(b)
	s := sample{Time: int64(r.Uint64()), Hash: r.Uint64()}
	if n := r.Count(); n > 0 {
		s.Values = make([]metricValue, n)
		for i := range s.Values {
			s.Values[i] = metricValue{Metric: r.String(), Value: r.Float64()}
		}
	}
	if err := r.Err(); err != nil {
		return sample{}, fmt.Errorf("aggregate: decoding a sample: %w", err)
	}
	return s, nil
}

// metricValue is one metric's value in a sample.
type metricValue struct {
	Metric string
	Value  float64
}

// point is one value of one metric of one reading.
type point struct {
	Time  int64 // event time, Unix nanoseconds
	Hash  uint64
	Value float64
}

// pointKey identifies a reading within a device, metric and window:
// two points with the same pointKey are copies of one message.
type pointKey struct {
	Time int64
	Hash uint64
}

// accumulator holds the distinct points of one key and window. It keeps the
// points themselves, not running sums, so that a copy counts once however
// the copies are spread over panes and merged session windows.
type accumulator struct {
	points map[pointKey]float64
}

func newAccumulator() *accumulator {
	return &accumulator{points: make(map[pointKey]float64)}
}

// add adds p unless a copy of it is already there, and reports whether it
// was new.
func (a *accumulator) add(p point) bool {
	k := pointKey{p.Time, p.Hash}
	if _, dup := a.points[k]; dup {
		return false
	}
	a.points[k] = p.Value
	return true
}

// stats computes the statistics of the points in event-time order (ties
// broken by payload hash), so that the sum, and First and Last on equal
// times, do not depend on the order the runner delivered the points in. The
// Aggregate has the statistics only; the caller adds the device, metric,
// window and pane.
func (a *accumulator) stats() Aggregate {
	if len(a.points) == 0 {
		return Aggregate{}
	}
	keys := make([]pointKey, 0, len(a.points))
	for k := range a.points {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y pointKey) int {
		if c := cmp.Compare(x.Time, y.Time); c != 0 {
			return c
		}
		return cmp.Compare(x.Hash, y.Hash)
	})
	first, last := keys[0], keys[len(keys)-1]
	out := Aggregate{
		Count:     int64(len(keys)),
		Min:       math.Inf(1),
		Max:       math.Inf(-1),
		First:     a.points[first],
		Last:      a.points[last],
		FirstTime: time.Unix(0, first.Time).UTC(),
		LastTime:  time.Unix(0, last.Time).UTC(),
	}
	for _, k := range keys {
		v := a.points[k]
		out.Sum += v
		out.Min = min(out.Min, v)
		out.Max = max(out.Max, v)
	}
	out.Mean = out.Sum / float64(out.Count)
	return out
}
