package sparkplug

import (
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

func TestParseTopic(t *testing.T) {
	good := map[string]Topic{
		"spBv1.0/plant-1/NBIRTH/edge-7":        {Group: "plant-1", Type: NBIRTH, EdgeNode: "edge-7"},
		"spBv1.0/plant-1/NDATA/edge-7":         {Group: "plant-1", Type: NDATA, EdgeNode: "edge-7"},
		"spBv1.0/plant-1/NDEATH/edge-7":        {Group: "plant-1", Type: NDEATH, EdgeNode: "edge-7"},
		"spBv1.0/plant-1/NCMD/edge-7":          {Group: "plant-1", Type: NCMD, EdgeNode: "edge-7"},
		"spBv1.0/plant-1/DBIRTH/edge-7/pump-3": {Group: "plant-1", Type: DBIRTH, EdgeNode: "edge-7", Device: "pump-3"},
		"spBv1.0/plant-1/DDATA/edge-7/pump-3":  {Group: "plant-1", Type: DDATA, EdgeNode: "edge-7", Device: "pump-3"},
		"spBv1.0/plant-1/DDEATH/edge-7/pump-3": {Group: "plant-1", Type: DDEATH, EdgeNode: "edge-7", Device: "pump-3"},
		"spBv1.0/plant-1/DCMD/edge-7/pump-3":   {Group: "plant-1", Type: DCMD, EdgeNode: "edge-7", Device: "pump-3"},
		"spBv1.0/STATE/scada-1":                {Type: STATE, EdgeNode: "scada-1"},
	}
	for topic, want := range good {
		got, err := ParseTopic(topic)
		require.NoError(t, err, topic)
		assert.Equal(t, want, got, topic)
		assert.Equal(t, topic, got.String())
		assert.Equal(t, want.Device != "", got.IsDevice(), topic)
		assert.Equal(t, want.Type != NCMD && want.Type != DCMD && want.Type != STATE, got.IsTelemetry(), topic)
	}
	for topic, want := range map[string]string{
		"spBv2.0/g/NDATA/e":         "not in the Sparkplug B namespace",
		"devices/d/telemetry":       "not in the Sparkplug B namespace",
		"spBv1.0/g/NDATA":           "has 3 levels",
		"spBv1.0/g/DDATA/e/d/x":     "has 6 levels",
		"spBv1.0/g/XDATA/e":         "not a Sparkplug B message type",
		"spBv1.0/g/NDATA/e/d":       "has no device level",
		"spBv1.0/g/DDATA/e":         "needs a device level",
		"spBv1.0//NDATA/e":          "empty id level",
		"spBv1.0/g/DDATA/e/":        "empty id level",
		"spBv1.0/g/NDATA/e+":        "contains '+', '#' or NUL",
		"spBv1.0/g/DDATA/e/d\x00":   "contains '+', '#' or NUL",
		"spBv1.0/g/NDATA/\xff":      "not valid UTF-8",
		"spBv1.0/STATE/":            "empty id level",
		"spBv1.0/g/DDATA/e/#":       "contains '+', '#' or NUL",
		"spBv1.0/STATE/host/extra/": "not a Sparkplug B message type",
	} {
		_, err := ParseTopic(topic)
		require.Error(t, err, topic)
		assert.Contains(t, err.Error(), want, topic)
	}
}

// samplePayload has every kind of value.
func samplePayload() Payload {
	return Payload{
		Timestamp: 1714564800123, Seq: 7, HasSeq: true, UUID: "u-1", Body: []byte{1, 2},
		Metrics: []Metric{
			{Name: "bdSeq", DataType: Int64, Value: LongValue(3)},
			{Name: "temperature", Alias: 1, HasAlias: true, DataType: Double, Value: DoubleValue(21.5), Timestamp: 1714564800100},
			{Alias: 2, HasAlias: true, Value: FloatValue(-1.25)},
			{Name: "offset", DataType: Int8, Value: IntValue(-3)},
			{Name: "count", DataType: UInt32, Value: IntValue(math.MaxUint32)},
			{Name: "total", DataType: Int64, Value: LongValue(uint64(1<<63 + 5))},
			{Name: "running", DataType: Boolean, Value: BooleanValue(true)},
			{Name: "mode", DataType: String, Value: StringValue("auto ü")},
			{Name: "blob", DataType: Bytes, Value: Value{Kind: KindBytes, Raw: []byte{0, 1}}},
			{Name: "table", DataType: DataSet, Value: Value{Kind: KindDataSet, Raw: []byte{0x08, 0x01}}},
			{Name: "udt", DataType: Template, Value: Value{Kind: KindTemplate, Raw: []byte{}}},
			{Name: "gone", DataType: Double, IsNull: true, IsHistorical: true, IsTransient: true},
		},
	}
}

func TestPayloadRoundTrips(t *testing.T) {
	in := samplePayload()
	b := in.Marshal()
	var out Payload
	require.NoError(t, Decode(b, &out))
	in.Metrics[10].Value.Raw = nil // an empty bytes field decodes as nil
	out.Metrics[10].Value.Raw = nil
	assert.Equal(t, in, out)

	// Decode reuses the metrics' storage and forgets the previous payload.
	storage := &out.Metrics[0]
	require.NoError(t, Decode((&Payload{Metrics: []Metric{{Alias: 9, HasAlias: true}}}).Marshal(), &out))
	assert.Same(t, storage, &out.Metrics[0])
	assert.Equal(t, Payload{Metrics: []Metric{{Alias: 9, HasAlias: true}}}, out)

	require.NoError(t, Decode(nil, &out))
	assert.Equal(t, Payload{Metrics: []Metric{}}, out)
}

func TestValueNumber(t *testing.T) {
	for _, tc := range []struct {
		dt   DataType
		v    Value
		want float64
		ok   bool
	}{
		{Int8, IntValue(-128), -128, true},
		{Int8, LongValue(uint64(0xFFFFFFFFFFFFFFFF)), -1, true},
		{Int16, IntValue(-300), -300, true},
		{Int32, IntValue(math.MinInt32), math.MinInt32, true},
		{Int64, LongValue(uint64(1<<64 - 2)), -2, true},
		{UInt8, IntValue(255), 255, true},
		{UInt16, IntValue(65535), 65535, true},
		{UInt32, IntValue(math.MaxUint32), math.MaxUint32, true},
		{UInt32, LongValue(math.MaxUint32), math.MaxUint32, true},
		{UInt64, LongValue(1 << 60), 1 << 60, true},
		{DateTime, LongValue(1714564800000), 1714564800000, true},
		{Float, FloatValue(1.5), 1.5, true},
		{Float, DoubleValue(2.5), 2.5, true},
		{Double, DoubleValue(-0.125), -0.125, true},
		{Boolean, BooleanValue(true), 1, true},
		{Boolean, BooleanValue(false), 0, true},
		{Int32, DoubleValue(1), 0, false},
		{Double, IntValue(1), 0, false},
		{Boolean, IntValue(1), 0, false},
		{String, StringValue("1"), 0, false},
		{Double, Value{}, 0, false},
		{DataSet, Value{Kind: KindDataSet}, 0, false},
	} {
		got, ok := tc.v.Number(tc.dt)
		assert.Equal(t, tc.ok, ok, "%v %v", tc.dt, tc.v)
		if tc.ok {
			assert.Equal(t, tc.want, got, "%v %v", tc.dt, tc.v)
		}
	}
	assert.True(t, Double.IsNumeric())
	assert.True(t, DateTime.IsNumeric())
	assert.False(t, String.IsNumeric())
	assert.True(t, UUID.IsText())
	assert.Equal(t, "DateTimeArray", DateTimeArray.String())
	assert.Equal(t, "DataType(99)", DataType(99).String())
	assert.Equal(t, "double_value", KindDouble.String())
}

// Every cut of a payload is an error or a shorter valid payload, never a
// panic; cuts inside a metric are errors that say where.
func TestDecodeTruncated(t *testing.T) {
	p := samplePayload()
	b := p.Marshal()
	var out Payload
	errs := 0
	for i := range b {
		if err := Decode(b[:i], &out); err != nil {
			errs++
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			assert.LessOrEqual(t, de.Offset, i)
		}
	}
	assert.Greater(t, errs, len(b)/2)
	err := Decode(b[:len(b)-1], &out)
	require.Error(t, err)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestDecodeMalformed(t *testing.T) {
	metric := func(fields ...[]byte) []byte {
		var m []byte
		for _, f := range fields {
			m = append(m, f...)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, payloadMetrics, protowire.BytesType), m)
	}
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	for name, tc := range map[string]struct {
		b    []byte
		want error
		text string
	}{
		"truncated varint":           {[]byte{0x08, 0x80}, io.ErrUnexpectedEOF, "at byte 1"},
		"truncated metric length":    {[]byte{0x12, 0x05, 0x0a}, io.ErrUnexpectedEOF, ""},
		"timestamp as bytes":         {protowire.AppendBytes(tag(payloadTimestamp, protowire.BytesType), []byte("x")), errWireType, ""},
		"metrics as varint":          {protowire.AppendVarint(tag(payloadMetrics, protowire.VarintType), 1), errWireType, ""},
		"group":                      {tag(20, protowire.StartGroupType), errGroup, ""},
		"reserved wire type":         {[]byte{0x0f}, nil, "reserved wire type"},
		"field number 0":             {[]byte{0x00}, nil, "invalid field number"},
		"name not UTF-8":             {metric(protowire.AppendBytes(tag(metricName, protowire.BytesType), []byte{0xff})), errNotUTF8, "metric 0"},
		"string value not UTF-8":     {metric(protowire.AppendBytes(tag(metricStringValue, protowire.BytesType), []byte{0xc3})), errNotUTF8, ""},
		"double as varint":           {metric(protowire.AppendVarint(tag(metricDoubleValue, protowire.VarintType), 1)), errWireType, ""},
		"float truncated":            {metric(append(tag(metricFloatValue, protowire.Fixed32Type), 1, 2)), io.ErrUnexpectedEOF, ""},
		"group in metric":            {metric(tag(metricTemplate, protowire.StartGroupType)), errGroup, ""},
		"uuid not UTF-8":             {protowire.AppendBytes(tag(payloadUUID, protowire.BytesType), []byte{0xfe}), errNotUTF8, ""},
		"varint too long":            {append([]byte{0x18}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), nil, "overflow"},
		"metric length beyond input": {[]byte{0x12, 0xff, 0xff, 0x03}, io.ErrUnexpectedEOF, ""},
		"json, not protobuf":         {[]byte(`{"temperature":21.5}`), nil, ""},
	} {
		var p Payload
		err := Decode(tc.b, &p)
		require.Error(t, err, name)
		if tc.want != nil {
			assert.ErrorIs(t, err, tc.want, name)
		}
		assert.Contains(t, err.Error(), tc.text, name)
	}
	// Unknown fields are skipped, in the payload and in a metric.
	b := protowire.AppendVarint(tag(40, protowire.VarintType), 5)
	b = append(b, protowire.AppendFixed64(tag(41, protowire.Fixed64Type), 5)...)
	b = append(b, metric(protowire.AppendFixed32(tag(30, protowire.Fixed32Type), 1), protowire.AppendVarint(tag(metricAlias, protowire.VarintType), 4))...)
	var p Payload
	require.NoError(t, Decode(b, &p))
	assert.Equal(t, []Metric{{Alias: 4, HasAlias: true}}, p.Metrics)
}

// A payload encoded by the protobuf runtime, from a message definition of
// our own with Sparkplug B's field numbers, decodes the same: the decoder
// reads what any protobuf encoder (Eclipse Tahu's among them) writes.
func TestDecodesProtobufRuntimeEncoding(t *testing.T) {
	md := testDescriptor(t)
	msg := dynamicpb.NewMessage(md)
	metricMD := md.Fields().ByName("metrics").Message()
	set := func(m protoreflect.Message, name string, v any) {
		m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(name)), protoreflect.ValueOf(v))
	}
	set(msg, "timestamp", uint64(1714564800000))
	set(msg, "seq", uint64(255))
	list := msg.Mutable(md.Fields().ByName("metrics")).List()
	add := func(fields map[string]any) {
		m := dynamicpb.NewMessage(metricMD)
		for k, v := range fields {
			set(m, k, v)
		}
		list.Append(protoreflect.ValueOfMessage(m))
	}
	add(map[string]any{"name": "t", "alias": uint64(1), "datatype": uint32(Double), "double_value": 21.5})
	add(map[string]any{"alias": uint64(2), "int_value": uint32(0xFFFFFFFE)})
	add(map[string]any{"name": "f", "float_value": float32(0.5), "timestamp": uint64(1714564800001)})
	add(map[string]any{"name": "on", "boolean_value": true, "is_historical": true})
	add(map[string]any{"name": "s", "string_value": "x"})
	b, err := proto.Marshal(msg)
	require.NoError(t, err)

	var p Payload
	require.NoError(t, Decode(b, &p))
	assert.Equal(t, uint64(1714564800000), p.Timestamp)
	assert.Equal(t, time.UnixMilli(1714564800000).UTC(), p.Time())
	assert.True(t, p.HasSeq)
	assert.Equal(t, uint64(255), p.Seq)
	require.Len(t, p.Metrics, 5)
	v, ok := p.Metrics[0].Value.Number(p.Metrics[0].DataType)
	assert.True(t, ok)
	assert.Equal(t, 21.5, v)
	v, _ = p.Metrics[1].Value.Number(Int32)
	assert.Equal(t, -2.0, v)
	v, _ = p.Metrics[2].Value.Number(Float)
	assert.Equal(t, 0.5, v)
	assert.Equal(t, time.UnixMilli(1714564800001).UTC(), p.Metrics[2].Time())
	assert.True(t, p.Metrics[3].IsHistorical)
	assert.Equal(t, "x", string(p.Metrics[4].Value.Raw))

	// And our encoding is what the runtime reads.
	ours := samplePayload()
	back := dynamicpb.NewMessage(md)
	require.NoError(t, proto.Unmarshal(ours.Marshal(), back))
	assert.Equal(t, uint64(7), back.Get(md.Fields().ByName("seq")).Uint())
	got := back.Get(md.Fields().ByName("metrics")).List()
	require.Equal(t, len(ours.Metrics), got.Len())
	assert.Equal(t, "temperature", got.Get(1).Message().Get(metricMD.Fields().ByName("name")).String())
	assert.Equal(t, 21.5, got.Get(1).Message().Get(metricMD.Fields().ByName("double_value")).Float())
	assert.Equal(t, uint64(math.MaxUint32), got.Get(4).Message().Get(metricMD.Fields().ByName("int_value")).Uint())
}

// testDescriptor is a minimal message definition of our own with the field
// numbers and types of Sparkplug B's Payload and Metric (no DataSet,
// Template or PropertySet messages: bytes stand in for them).
func testDescriptor(t *testing.T) protoreflect.MessageDescriptor {
	field := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, repeated bool, msg string) *descriptorpb.FieldDescriptorProto {
		label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		if repeated {
			label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		}
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(), Label: label.Enum()}
		if msg != "" {
			f.TypeName = proto.String(msg)
		}
		return f
	}
	const (
		u64  = descriptorpb.FieldDescriptorProto_TYPE_UINT64
		u32  = descriptorpb.FieldDescriptorProto_TYPE_UINT32
		str  = descriptorpb.FieldDescriptorProto_TYPE_STRING
		byts = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		bl   = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	)
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("mqttbeam_sparkplug_test.proto"), Package: proto.String("mqttbeamtest"), Syntax: proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Payload"), Field: []*descriptorpb.FieldDescriptorProto{
				field("timestamp", 1, u64, false, ""),
				field("metrics", 2, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, true, ".mqttbeamtest.Metric"),
				field("seq", 3, u64, false, ""),
				field("uuid", 4, str, false, ""),
				field("body", 5, byts, false, ""),
			}},
			{Name: proto.String("Metric"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, str, false, ""),
				field("alias", 2, u64, false, ""),
				field("timestamp", 3, u64, false, ""),
				field("datatype", 4, u32, false, ""),
				field("is_historical", 5, bl, false, ""),
				field("is_transient", 6, bl, false, ""),
				field("is_null", 7, bl, false, ""),
				field("int_value", 10, u32, false, ""),
				field("long_value", 11, u64, false, ""),
				field("float_value", 12, descriptorpb.FieldDescriptorProto_TYPE_FLOAT, false, ""),
				field("double_value", 13, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, false, ""),
				field("boolean_value", 14, bl, false, ""),
				field("string_value", 15, str, false, ""),
				field("bytes_value", 16, byts, false, ""),
				field("dataset_value", 17, byts, false, ""),
				field("template_value", 18, byts, false, ""),
			}},
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	require.NoError(t, err)
	return fd.Messages().ByName("Payload")
}

func TestRebirthRequest(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var p Payload
	require.NoError(t, Decode(RebirthRequest(at), &p))
	require.Len(t, p.Metrics, 1)
	m := p.Metrics[0]
	assert.Equal(t, RebirthMetric, m.Name)
	assert.Equal(t, Boolean, m.DataType)
	v, ok := m.Value.Number(Boolean)
	assert.True(t, ok)
	assert.Equal(t, 1.0, v)
	assert.Equal(t, at, p.Time())
}

func FuzzDecode(f *testing.F) {
	p := samplePayload()
	f.Add(p.Marshal())
	f.Add(RebirthRequest(time.Unix(1, 0)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Payload
		err := Decode(b, &p)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(b) {
				t.Fatalf("error %v is not a DecodeError within the input", err)
			}
			return
		}
		// What decodes re-encodes to a payload that decodes the same.
		again := p.Marshal()
		var q Payload
		if err := Decode(again, &q); err != nil {
			t.Fatalf("re-encoding of %x does not decode: %v", b, err)
		}
		if len(q.Metrics) != len(p.Metrics) || q.Seq != p.Seq || q.HasSeq != p.HasSeq || q.Timestamp != p.Timestamp {
			t.Fatalf("round trip changed %+v into %+v", p, q)
		}
		for i := range p.Metrics {
			a, b := p.Metrics[i], q.Metrics[i]
			if a.Name != b.Name || a.Alias != b.Alias || a.DataType != b.DataType || a.Value.Kind != b.Value.Kind || a.Value.Bits != b.Value.Bits || string(a.Value.Raw) != string(b.Value.Raw) {
				t.Fatalf("metric %d changed: %+v -> %+v", i, a, b)
			}
		}
	})
}
