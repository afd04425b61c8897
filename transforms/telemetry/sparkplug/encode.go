package sparkplug

import (
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Well-known metric names.
const (
	// BdSeqMetric is the birth/death sequence number of an NBIRTH and the
	// NDEATH that ends it: an NDEATH whose bdSeq differs from the current
	// NBIRTH's belongs to an earlier session.
	BdSeqMetric = "bdSeq"
	// RebirthMetric is the NCMD metric that asks an edge node to publish
	// its BIRTHs again.
	RebirthMetric = "Node Control/Rebirth"
	// ControlPrefix starts the names of an edge node's control metrics
	// (commands it accepts), such as RebirthMetric.
	ControlPrefix = "Node Control/"
)

// IntValue is an int_value: Int8, Int16, Int32, UInt8, UInt16 and UInt32
// (signed values in two's complement).
func IntValue(v int64) Value { return Value{Kind: KindInt, Bits: uint64(uint32(v))} }

// LongValue is a long_value: Int64, UInt64 (as its bits) and DateTime
// (epoch milliseconds).
func LongValue(v uint64) Value { return Value{Kind: KindLong, Bits: v} }

// FloatValue is a float_value.
func FloatValue(v float32) Value { return Value{Kind: KindFloat, Bits: uint64(math.Float32bits(v))} }

// DoubleValue is a double_value.
func DoubleValue(v float64) Value { return Value{Kind: KindDouble, Bits: math.Float64bits(v)} }

// BooleanValue is a boolean_value.
func BooleanValue(v bool) Value {
	if v {
		return Value{Kind: KindBoolean, Bits: 1}
	}
	return Value{Kind: KindBoolean}
}

// StringValue is a string_value: String, Text and UUID.
func StringValue(s string) Value { return Value{Kind: KindString, Raw: []byte(s)} }

// Marshal encodes p as a Sparkplug B payload.
func (p *Payload) Marshal() []byte {
	return AppendPayload(make([]byte, 0, 16+24*len(p.Metrics)), p)
}

// AppendPayload appends the encoding of p to b. Fields are written in field
// number order, zero values left out, as protobuf encoders do (the seq is
// written when HasSeq, also when 0).
func AppendPayload(b []byte, p *Payload) []byte {
	if p.Timestamp != 0 {
		b = protowire.AppendTag(b, payloadTimestamp, protowire.VarintType)
		b = protowire.AppendVarint(b, p.Timestamp)
	}
	var m []byte
	for i := range p.Metrics {
		m = appendMetric(m[:0], &p.Metrics[i])
		b = protowire.AppendTag(b, payloadMetrics, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	if p.HasSeq {
		b = protowire.AppendTag(b, payloadSeq, protowire.VarintType)
		b = protowire.AppendVarint(b, p.Seq)
	}
	if p.UUID != "" {
		b = protowire.AppendTag(b, payloadUUID, protowire.BytesType)
		b = protowire.AppendString(b, p.UUID)
	}
	if len(p.Body) > 0 {
		b = protowire.AppendTag(b, payloadBody, protowire.BytesType)
		b = protowire.AppendBytes(b, p.Body)
	}
	return b
}

func appendMetric(b []byte, m *Metric) []byte {
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
	flag := func(b []byte, num protowire.Number, v bool) []byte {
		if !v {
			return b
		}
		return varint(b, num, 1)
	}
	if m.Name != "" {
		b = protowire.AppendString(protowire.AppendTag(b, metricName, protowire.BytesType), m.Name)
	}
	if m.HasAlias {
		b = varint(b, metricAlias, m.Alias)
	}
	if m.Timestamp != 0 {
		b = varint(b, metricTimestamp, m.Timestamp)
	}
	if m.DataType != Unknown {
		b = varint(b, metricDataType, uint64(m.DataType))
	}
	b = flag(b, metricIsHistorical, m.IsHistorical)
	b = flag(b, metricIsTransient, m.IsTransient)
	b = flag(b, metricIsNull, m.IsNull)
	v := m.Value
	switch v.Kind {
	case KindInt:
		b = varint(b, metricIntValue, v.Bits&math.MaxUint32)
	case KindLong:
		b = varint(b, metricLongValue, v.Bits)
	case KindBoolean:
		b = varint(b, metricBooleanValue, v.Bits)
	case KindFloat:
		b = protowire.AppendFixed32(protowire.AppendTag(b, metricFloatValue, protowire.Fixed32Type), uint32(v.Bits))
	case KindDouble:
		b = protowire.AppendFixed64(protowire.AppendTag(b, metricDoubleValue, protowire.Fixed64Type), v.Bits)
	case KindString, KindBytes, KindDataSet, KindTemplate, KindExtension:
		num := metricStringValue + protowire.Number(v.Kind-KindString) // the kinds follow the field numbers
		b = protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v.Raw)
	}
	return b
}

// RebirthRequest is the payload of an NCMD that asks an edge node to
// publish its BIRTHs again (metric RebirthMetric, Boolean true), stamped
// at.
func RebirthRequest(at time.Time) []byte {
	p := Payload{Timestamp: uint64(at.UnixMilli()), Metrics: []Metric{{
		Name: RebirthMetric, Timestamp: uint64(at.UnixMilli()), DataType: Boolean, Value: BooleanValue(true),
	}}}
	return p.Marshal()
}
