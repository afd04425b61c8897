package aggregate

import (
	"cmp"
	"fmt"
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
	register.Function1x1(encodeSamples)
	register.Function1x2(decodeSamples)
	beam.RegisterCoder(reflect.TypeOf((*samples)(nil)).Elem(), encodeSamples, decodeSamples)
}

// sample is what a reading brings to its device's windows: its device,
// event time, payload hash and finite metric values.
type sample struct {
	Device string
	Time   int64 // event time, Unix nanoseconds
	Hash   uint64
	Values []metricValue
}

// samples is the samples of one shard of devices whose readings fall into
// the same windows, at the earliest of their event times: what crosses the
// GroupByKey of fixed and sliding windows. The runner's work there is per
// element, and a batch carries hundreds of readings.
type samples struct {
	List []sample
}

// encodeSample is sample's Beam coder: samples cross the runner's
// GroupByKey, and a compact form is much cheaper there (for the runner too,
// which then only skips a length-prefixed blob) than Beam's schema coder.
func encodeSample(s sample) []byte {
	return appendSample(make([]byte, 0, 25+len(s.Device)+24*len(s.Values)), s)
}

// decodeSample is the inverse of encodeSample.
func decodeSample(b []byte) (sample, error) {
	r := wire.NewReader(b)
	s := readSample(r)
	if err := r.Err(); err != nil {
		return sample{}, fmt.Errorf("aggregate: decoding a sample: %w", err)
	}
	return s, nil
}

// encodeSamples is samples' Beam coder: a count, then each sample as
// encodeSample writes it.
func encodeSamples(ss samples) []byte {
	b := wire.AppendUvarint(make([]byte, 0, 64*len(ss.List)), uint64(len(ss.List)))
	for _, s := range ss.List {
		b = appendSample(b, s)
	}
	return b
}

// decodeSamples is the inverse of encodeSamples.
func decodeSamples(b []byte) (samples, error) {
	r := wire.NewReader(b)
	ss := samples{List: make([]sample, r.Count())}
	for i := range ss.List {
		ss.List[i] = readSample(r)
	}
	if err := r.Err(); err != nil {
		return samples{}, fmt.Errorf("aggregate: decoding a batch of samples: %w", err)
	}
	return ss, nil
}

func appendSample(b []byte, s sample) []byte {
	b = wire.AppendString(b, s.Device)
	b = wire.AppendUint64(b, uint64(s.Time))
	b = wire.AppendUint64(b, s.Hash)
	b = wire.AppendUvarint(b, uint64(len(s.Values)))
	for _, v := range s.Values {
		b = wire.AppendFloat64(wire.AppendString(b, v.Metric), v.Value)
	}
	return b
}

func readSample(r *wire.Reader) sample {
	s := sample{Device: r.String(), Time: int64(r.Uint64()), Hash: r.Uint64()}
	if n := r.Count(); n > 0 {
		s.Values = make([]metricValue, n)
		for i := range s.Values {
			s.Values[i] = metricValue{Metric: r.String(), Value: r.Float64()}
		}
	}
	return s
}

// metricValue is one metric's value in a sample.
type metricValue struct {
	Metric string
	Value  float64
}

// statsOf computes the statistics of each metric of one device's samples
// in a window, counting copies once, and returns them by metric name with
// the number of copies skipped (one per metric value). It sorts samples.
//
// Two samples with the same Time and Hash are copies of one message (the
// same payload at the same event time): sorted by (Time, Hash), the copies
// are neighbours. First and Last are the values of the earliest and latest
// distinct readings, ties broken by Hash.
func statsOf(samples []sample) (out []Aggregate, copies int64) {
	slices.SortFunc(samples, func(x, y sample) int {
		if c := cmp.Compare(x.Time, y.Time); c != 0 {
			return c
		}
		return cmp.Compare(x.Hash, y.Hash)
	})
	for i, smp := range samples {
		if i > 0 && smp.Time == samples[i-1].Time && smp.Hash == samples[i-1].Hash {
			copies += int64(len(smp.Values))
			continue
		}
		at := time.Unix(0, smp.Time).UTC()
		for _, v := range smp.Values {
			a := metricOf(&out, v.Metric)
			if a.Count == 0 {
				a.Min, a.Max, a.First, a.FirstTime = v.Value, v.Value, v.Value, at
			}
			a.Count++
			a.Sum += v.Value
			a.Min = min(a.Min, v.Value)
			a.Max = max(a.Max, v.Value)
			a.Last, a.LastTime = v.Value, at
		}
	}
	for i := range out {
		out[i].Mean = out[i].Sum / float64(out[i].Count)
	}
	slices.SortFunc(out, func(x, y Aggregate) int { return cmp.Compare(x.Metric, y.Metric) })
	return out, copies
}

// metricOf returns the aggregate of metric in out, appending it when
// missing. A device has a handful of metrics: a scan beats a map.
func metricOf(out *[]Aggregate, metric string) *Aggregate {
	for i := range *out {
		if (*out)[i].Metric == metric {
			return &(*out)[i]
		}
	}
	*out = append(*out, Aggregate{Metric: metric})
	return &(*out)[len(*out)-1]
}
