package sparkplug

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// DataType is a metric's Sparkplug B datatype.
type DataType uint32

// The datatypes. Arrays, PropertySets, DataSets, Templates, Bytes and Files
// are decoded as raw bytes (Value.Raw) that telemetry reports as
// unsupported.
const (
	Unknown DataType = iota
	Int8
	Int16
	Int32
	Int64
	UInt8
	UInt16
	UInt32
	UInt64
	Float
	Double
	Boolean
	String
	DateTime
	Text
	UUID
	DataSet
	Bytes
	File
	Template
	PropertySet
	PropertySetList
	Int8Array
	Int16Array
	Int32Array
	Int64Array
	UInt8Array
	UInt16Array
	UInt32Array
	UInt64Array
	FloatArray
	DoubleArray
	BooleanArray
	StringArray
	DateTimeArray
)

var dataTypeNames = [...]string{
	"Unknown", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
	"Float", "Double", "Boolean", "String", "DateTime", "Text", "UUID", "DataSet", "Bytes",
	"File", "Template", "PropertySet", "PropertySetList", "Int8Array", "Int16Array",
	"Int32Array", "Int64Array", "UInt8Array", "UInt16Array", "UInt32Array", "UInt64Array",
	"FloatArray", "DoubleArray", "BooleanArray", "StringArray", "DateTimeArray",
}

// String is the datatype's name in the specification, e.g. "Int32".
func (d DataType) String() string {
	if int(d) < len(dataTypeNames) {
		return dataTypeNames[d]
	}
	return fmt.Sprintf("DataType(%d)", uint32(d))
}

// ValueKind says which value field a metric has: the protobuf oneof.
type ValueKind uint8

// The value fields of a metric. KindNone is a metric without a value (a
// null, when IsNull is set).
const (
	KindNone      ValueKind = iota
	KindInt                 // int_value: 8, 16 and 32-bit integers, in Bits' low 32 bits
	KindLong                // long_value: 64-bit integers and DateTime, in Bits
	KindFloat               // float_value: in Bits as float32 bits
	KindDouble              // double_value: in Bits as float64 bits
	KindBoolean             // boolean_value: Bits 0 or 1
	KindString              // string_value (String, Text, UUID): Raw
	KindBytes               // bytes_value (Bytes, File, arrays): Raw
	KindDataSet             // dataset_value: Raw, not decoded
	KindTemplate            // template_value: Raw, not decoded
	KindExtension           // extension_value: Raw, not decoded
)

var kindNames = [...]string{"none", "int_value", "long_value", "float_value", "double_value",
	"boolean_value", "string_value", "bytes_value", "dataset_value", "template_value", "extension_value"}

// String names the protobuf field of the kind, e.g. "double_value".
func (k ValueKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("ValueKind(%d)", uint8(k))
}

// Value is one metric value: which field it is in and its bits or bytes.
type Value struct {
	Kind ValueKind
	// Bits holds the numbers and booleans (see the kinds).
	Bits uint64
	// Raw holds strings, bytes and the undecoded messages. Decode points
	// it into the payload it decodes, without copying.
	Raw []byte
}

// Payload is a Sparkplug B payload.
type Payload struct {
	// Timestamp is the payload's time in epoch milliseconds; 0 when it has
	// none.
	Timestamp uint64
	// Seq is the sequence number (0-255), valid when HasSeq.
	Seq    uint64
	HasSeq bool
	// UUID and Body are the payload's optional uuid and body fields.
	UUID string
	Body []byte
	// Metrics are the payload's metrics, in order.
	Metrics []Metric
}

// Metric is one metric of a payload.
type Metric struct {
	// Name is the metric's name; BIRTHs give it, DATA messages may give an
	// Alias instead.
	Name string
	// Alias is the number a BIRTH assigned to the name, valid when
	// HasAlias.
	Alias    uint64
	HasAlias bool
	// Timestamp is the value's time in epoch milliseconds; 0 when the
	// metric has none (the payload's applies).
	Timestamp uint64
	// DataType is the metric's datatype; BIRTHs give it, DATA messages
	// usually leave it Unknown (the BIRTH's applies).
	DataType     DataType
	IsHistorical bool
	IsTransient  bool
	// IsNull says the metric has no value (Value.Kind is then KindNone).
	IsNull bool
	Value  Value
}

// Time is the payload's Timestamp as a time (the zero time when it has
// none).
func (p *Payload) Time() time.Time { return millis(p.Timestamp) }

// Time is the metric's Timestamp as a time (the zero time when it has
// none).
func (m *Metric) Time() time.Time { return millis(m.Timestamp) }

func millis(ms uint64) time.Time {
	if ms == 0 || ms > math.MaxInt64 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// Field numbers of the message definitions, as the Sparkplug B
// specification numbers them.
const (
	payloadTimestamp = 1
	payloadMetrics   = 2
	payloadSeq       = 3
	payloadUUID      = 4
	payloadBody      = 5

	metricName         = 1
	metricAlias        = 2
	metricTimestamp    = 3
	metricDataType     = 4
	metricIsHistorical = 5
	metricIsTransient  = 6
	metricIsNull       = 7
	metricMetadata     = 8
	metricProperties   = 9
	metricIntValue     = 10
	metricLongValue    = 11
	metricFloatValue   = 12
	metricDoubleValue  = 13
	metricBooleanValue = 14
	metricStringValue  = 15
	metricBytesValue   = 16
	metricDataSetValue = 17
	metricTemplate     = 18
	metricExtension    = 19
)

// A DecodeError says where and why a payload is not a Sparkplug B payload.
type DecodeError struct {
	// Offset is the byte at which decoding failed.
	Offset int
	// Metric is the index of the metric being decoded, or -1.
	Metric int
	Err    error
}

func (e *DecodeError) Error() string {
	if e.Metric >= 0 {
		return fmt.Sprintf("metric %d at byte %d: %v", e.Metric, e.Offset, e.Err)
	}
	return fmt.Sprintf("at byte %d: %v", e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

var (
	errGroup    = errors.New("protobuf groups are not part of Sparkplug B")
	errNotUTF8  = errors.New("string is not valid UTF-8")
	errWireType = errors.New("field has the wrong wire type")
)

// Decode decodes the Sparkplug B payload b into p, reusing p.Metrics'
// storage. Strings and bytes values point into b (Value.Raw); names and the
// uuid are copied. Unknown fields are skipped, as protobuf does; a
// truncated or malformed encoding, a known field with the wrong wire type,
// a protobuf group or a string that is not UTF-8 is an error (a
// *DecodeError). Metadata, properties, DataSets and Templates are not
// decoded.
func Decode(b []byte, p *Payload) error {
	metrics := p.Metrics[:0]
	*p = Payload{}
	off := 0
	fail := func(metric int, err error) error {
		p.Metrics = metrics
		return &DecodeError{Offset: off, Metric: metric, Err: err}
	}
	for off < len(b) {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return fail(-1, protowire.ParseError(n))
		}
		off += n
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b[off:])
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b[off:])
		case protowire.StartGroupType, protowire.EndGroupType:
			return fail(-1, errGroup)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[off:])
		}
		if n < 0 {
			metric := -1
			if num == payloadMetrics {
				metric = len(metrics) // cut short
			}
			return fail(metric, protowire.ParseError(n))
		}
		start := off
		off += n
		switch num {
		case payloadTimestamp, payloadSeq:
			if typ != protowire.VarintType {
				off = start
				return fail(-1, errWireType)
			}
			if num == payloadTimestamp {
				p.Timestamp = v
			} else {
				p.Seq, p.HasSeq = v, true
			}
		case payloadMetrics, payloadUUID, payloadBody:
			if typ != protowire.BytesType {
				off = start
				return fail(-1, errWireType)
			}
			switch num {
			case payloadMetrics:
				if len(metrics) < cap(metrics) {
					metrics = metrics[:len(metrics)+1]
				} else {
					metrics = append(metrics, Metric{})
				}
				m := &metrics[len(metrics)-1]
				if at, err := decodeMetric(raw, m); err != nil {
					off = start + at
					return fail(len(metrics)-1, err)
				}
			case payloadUUID:
				if !validUTF8(raw) {
					off = start
					return fail(-1, errNotUTF8)
				}
				p.UUID = string(raw)
			default:
				p.Body = raw
			}
		}
	}
	p.Metrics = metrics
	return nil
}

// decodeMetric decodes one metric into m, returning the offset in b at
// which it failed.
func decodeMetric(b []byte, m *Metric) (int, error) {
	*m = Metric{}
	off := 0
	for off < len(b) {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return off, protowire.ParseError(n)
		}
		off += n
		start := off
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b[off:])
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b[off:])
			v = uint64(v32)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b[off:])
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b[off:])
		case protowire.StartGroupType, protowire.EndGroupType:
			return start, errGroup
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[off:])
		}
		if n < 0 {
			return start, protowire.ParseError(n)
		}
		off += n
		want, kind := wireTypeOf(num)
		if want < 0 {
			continue // an unknown field: skipped
		}
		if typ != want {
			return start, errWireType
		}
		switch num {
		case metricName:
			if !validUTF8(raw) {
				return start, errNotUTF8
			}
			m.Name = string(raw)
		case metricAlias:
			m.Alias, m.HasAlias = v, true
		case metricTimestamp:
			m.Timestamp = v
		case metricDataType:
			m.DataType = DataType(uint32(v))
		case metricIsHistorical:
			m.IsHistorical = v != 0
		case metricIsTransient:
			m.IsTransient = v != 0
		case metricIsNull:
			m.IsNull = v != 0
		case metricMetadata, metricProperties:
			// not decoded
		case metricIntValue:
			m.Value = Value{Kind: kind, Bits: uint64(uint32(v))}
		case metricBooleanValue:
			m.Value = Value{Kind: kind, Bits: min(v, 1)}
		case metricLongValue, metricFloatValue, metricDoubleValue:
			m.Value = Value{Kind: kind, Bits: v}
		case metricStringValue:
			if !validUTF8(raw) {
				return start, errNotUTF8
			}
			m.Value = Value{Kind: kind, Raw: raw}
		default: // bytes, dataset, template, extension
			m.Value = Value{Kind: kind, Raw: raw}
		}
	}
	return off, nil
}

// wireTypeOf is the wire type and value kind of a metric field; the wire
// type is -1 for an unknown field.
func wireTypeOf(num protowire.Number) (protowire.Type, ValueKind) {
	switch num {
	case metricName, metricMetadata, metricProperties:
		return protowire.BytesType, KindNone
	case metricAlias, metricTimestamp, metricDataType, metricIsHistorical, metricIsTransient, metricIsNull:
		return protowire.VarintType, KindNone
	case metricIntValue:
		return protowire.VarintType, KindInt
	case metricLongValue:
		return protowire.VarintType, KindLong
	case metricFloatValue:
		return protowire.Fixed32Type, KindFloat
	case metricDoubleValue:
		return protowire.Fixed64Type, KindDouble
	case metricBooleanValue:
		return protowire.VarintType, KindBoolean
	case metricStringValue:
		return protowire.BytesType, KindString
	case metricBytesValue:
		return protowire.BytesType, KindBytes
	case metricDataSetValue:
		return protowire.BytesType, KindDataSet
	case metricTemplate:
		return protowire.BytesType, KindTemplate
	case metricExtension:
		return protowire.BytesType, KindExtension
	}
	return -1, KindNone
}

// validUTF8 is utf8.Valid with a fast path for ASCII, the common case of
// metric names.
func validUTF8(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return utf8.Valid(b)
		}
	}
	return true
}

// Number is the value of a metric of datatype dt as a number: integers
// (from int_value or long_value, signed ones in two's complement), Float
// and Double (from float_value or double_value), Boolean (1 or 0) and
// DateTime (epoch milliseconds). ok is false when dt is not one of these
// or the value is in a field that cannot hold it.
func (v Value) Number(dt DataType) (f float64, ok bool) {
	isInt := v.Kind == KindInt || v.Kind == KindLong
	switch dt {
	case Int8:
		return float64(int8(v.Bits)), isInt
	case Int16:
		return float64(int16(v.Bits)), isInt
	case Int32:
		return float64(int32(v.Bits)), isInt
	case Int64:
		return float64(int64(v.Bits)), isInt
	case UInt8:
		return float64(uint8(v.Bits)), isInt
	case UInt16:
		return float64(uint16(v.Bits)), isInt
	case UInt32:
		return float64(uint32(v.Bits)), isInt
	case UInt64, DateTime:
		return float64(v.Bits), isInt
	case Float, Double:
		switch v.Kind {
		case KindFloat:
			return float64(math.Float32frombits(uint32(v.Bits))), true
		case KindDouble:
			return math.Float64frombits(v.Bits), true
		}
	case Boolean:
		return float64(v.Bits), v.Kind == KindBoolean
	}
	return 0, false
}

// IsNumeric says whether dt is a number, a Boolean or a DateTime (see
// Value.Number).
func (dt DataType) IsNumeric() bool { return dt >= Int8 && dt <= Boolean || dt == DateTime }

// IsText says whether dt is String, Text or UUID.
func (dt DataType) IsText() bool { return dt == String || dt == Text || dt == UUID }
