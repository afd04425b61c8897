package telemetry

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/mqttio"
	sp "github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// edgeNode publishes a test's Sparkplug B messages: seq counts from its
// NBIRTH's 0, as the specification has it.
type edgeNode struct {
	group, id string
	seq       uint64
	at        time.Time // payload timestamps; received is the receive time
}

func newEdgeNode() *edgeNode {
	return &edgeNode{group: "plant-1", id: "edge-7", at: received.Add(-time.Second)}
}

// msg is a message of type typ (of device, for D* types) with metrics.
func (e *edgeNode) msg(typ, device string, metrics ...sp.Metric) mqttio.Message {
	t := sp.Topic{Group: e.group, Type: typ, EdgeNode: e.id, Device: device}
	p := sp.Payload{Timestamp: uint64(e.at.UnixMilli()), Metrics: metrics}
	switch typ {
	case sp.NBIRTH:
		e.seq = 0
		fallthrough
	case sp.DBIRTH, sp.DDATA, sp.NDATA, sp.DDEATH:
		p.Seq, p.HasSeq = e.seq, true
		e.seq = (e.seq + 1) % 256
	}
	return mqttio.Message{Topic: t.String(), Payload: p.Marshal(), QoS: 1, ReceivedAt: received}
}

func metric(name string, alias uint64, dt sp.DataType, v sp.Value) sp.Metric {
	return sp.Metric{Name: name, Alias: alias, HasAlias: alias != 0, DataType: dt, Value: v}
}

// byAlias is a DATA metric that gives only its alias.
func byAlias(alias uint64, v sp.Value) sp.Metric {
	return sp.Metric{Alias: alias, HasAlias: true, Value: v}
}

func nbirth(e *edgeNode) mqttio.Message {
	return e.msg(sp.NBIRTH, "",
		metric(sp.BdSeqMetric, 0, sp.Int64, sp.LongValue(3)),
		metric(sp.RebirthMetric, 1, sp.Boolean, sp.BooleanValue(false)),
		metric("uptime", 2, sp.Int64, sp.LongValue(100)),
		metric("Properties/Version", 3, sp.String, sp.StringValue("1.2")))
}

func dbirth(e *edgeNode, device string) mqttio.Message {
	return e.msg(sp.DBIRTH, device,
		metric("temperature", 10, sp.Double, sp.DoubleValue(20.5)),
		metric("running", 11, sp.Boolean, sp.BooleanValue(true)),
		metric("mode", 12, sp.String, sp.StringValue("auto")),
		metric("count", 13, sp.UInt32, sp.IntValue(math.MaxUint32)),
		metric("offset", 14, sp.Int8, sp.IntValue(-5)),
		metric("serviced", 15, sp.DateTime, sp.LongValue(uint64(received.Add(-24*time.Hour).UnixMilli()))),
		metric("level", 0, sp.Float, sp.FloatValue(0.5)))
}

func sparkplugParser(t testing.TB, opts ...Option) *Parser {
	return mustParser(t, append([]Option{PayloadFormat(FormatSparkplugB)}, opts...)...)
}

func parseAll(p *Parser, msgs ...mqttio.Message) ([]Reading, []DeadLetter) {
	var rs []Reading
	var ds []DeadLetter
	for _, m := range msgs {
		rs, ds = p.ParseAll(m, rs, ds)
	}
	return rs, ds
}

func TestSparkplugLifecycle(t *testing.T) {
	p := sparkplugParser(t)
	e := newEdgeNode()
	at := e.at
	later := at.Add(500 * time.Millisecond)
	msgs := []mqttio.Message{
		nbirth(e),
		dbirth(e, "pump-1"),
		e.msg(sp.NDATA, "", byAlias(2, sp.LongValue(160))),
		e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(21.25)), byAlias(11, sp.BooleanValue(false)),
			sp.Metric{Alias: 10, HasAlias: true, Timestamp: uint64(later.UnixMilli()), Value: sp.DoubleValue(21.5)},
			sp.Metric{Name: "level", Value: sp.FloatValue(0.75)},
			sp.Metric{Alias: 12, HasAlias: true, Value: sp.StringValue("manual")},
			sp.Metric{Alias: 13, HasAlias: true, IsNull: true}),
		e.msg(sp.DDEATH, "pump-1"),
		e.msg(sp.NDATA, "", byAlias(2, sp.LongValue(170))),
		e.msg(sp.NDEATH, "", metric(sp.BdSeqMetric, 0, sp.Int64, sp.LongValue(3))),
	}
	rs, ds := parseAll(p, msgs...)
	require.Empty(t, ds)
	node, pump := "plant-1/edge-7", "plant-1/edge-7/pump-1"
	gw := map[string]string{AttrGateway: node}
	serviced := received.Add(-24 * time.Hour).UTC().Format(time.RFC3339Nano)
	want := []Reading{
		{DeviceID: node, Kind: sp.NBIRTH, EventTime: at, TimeSource: TimeFromPayload,
			Metrics: map[string]float64{"uptime": 100, OnlineMetric: 1}, Attributes: map[string]string{"Properties/Version": "1.2"}},
		{DeviceID: pump, Kind: sp.DBIRTH, EventTime: at, TimeSource: TimeFromPayload,
			Metrics:    map[string]float64{"temperature": 20.5, "running": 1, "count": math.MaxUint32, "offset": -5, "level": 0.5, OnlineMetric: 1},
			Attributes: map[string]string{AttrGateway: node, "mode": "auto", "serviced": serviced}},
		{DeviceID: node, Kind: sp.NDATA, EventTime: at, TimeSource: TimeFromPayload, Metrics: map[string]float64{"uptime": 160}},
		{DeviceID: pump, Kind: sp.DDATA, EventTime: at, TimeSource: TimeFromPayload,
			Metrics: map[string]float64{"temperature": 21.25, "running": 0, "level": 0.75}, Attributes: map[string]string{AttrGateway: node, "mode": "manual"}},
		{DeviceID: pump, Kind: sp.DDATA, EventTime: later, TimeSource: TimeFromPayload,
			Metrics: map[string]float64{"temperature": 21.5}, Attributes: gw},
		{DeviceID: pump, Kind: sp.DDEATH, EventTime: at, TimeSource: TimeFromPayload, Metrics: map[string]float64{OnlineMetric: 0}, Attributes: gw},
		{DeviceID: node, Kind: sp.NDATA, EventTime: at, TimeSource: TimeFromPayload, Metrics: map[string]float64{"uptime": 170}},
		{DeviceID: node, Kind: sp.NDEATH, EventTime: received, TimeSource: TimeFromReceived, Metrics: map[string]float64{OnlineMetric: 0}},
	}
	msgOf := []int{0, 1, 2, 3, 3, 4, 5, 6}
	require.Len(t, rs, len(want))
	for i := range want {
		m := msgs[msgOf[i]]
		want[i].Topic, want[i].ReceivedAt, want[i].PayloadHash = m.Topic, received, hash(m.Payload)
		assert.Equal(t, want[i], rs[i], "reading %d", i)
	}

	// After the NDEATH, the node's DATA wait for its next NBIRTH.
	_, ds = parseAll(p, e.msg(sp.NDATA, "", byAlias(2, sp.LongValue(1))))
	require.Len(t, ds, 1)
	assert.Equal(t, ReasonNoBirth, ds[0].Reason)
	rs, ds = parseAll(p, nbirth(e), e.msg(sp.NDATA, "", byAlias(2, sp.LongValue(5))))
	require.Empty(t, ds)
	assert.Equal(t, map[string]float64{"uptime": 5}, rs[1].Metrics)
}

// An NDEATH marks the node's devices offline too.
func TestSparkplugNodeDeathTakesItsDevices(t *testing.T) {
	p := sparkplugParser(t, SparkplugDeviceID("{edge_node_id}.{device_id}"))
	e := newEdgeNode()
	rs, ds := parseAll(p, nbirth(e), dbirth(e, "pump-2"), dbirth(e, "pump-1"), e.msg(sp.NDEATH, ""))
	require.Empty(t, ds)
	var offline []string
	for _, r := range rs[3:] {
		assert.Equal(t, map[string]float64{OnlineMetric: 0}, r.Metrics)
		assert.Equal(t, sp.NDEATH, r.Kind)
		offline = append(offline, r.DeviceID+"|"+r.Attributes[AttrGateway])
	}
	assert.Equal(t, []string{"edge-7|", "edge-7.pump-1|edge-7", "edge-7.pump-2|edge-7"}, offline)
	_, ds = parseAll(p, e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(1))))
	require.Len(t, ds, 1)
	assert.Equal(t, ReasonNoBirth, ds[0].Reason)
}

// Every way a Sparkplug B message can be wrong is a dead letter with its
// reason; where the message also has good metrics, they are readings.
func TestSparkplugMalformed(t *testing.T) {
	type step func(e *edgeNode) mqttio.Message
	born := []step{nbirth, func(e *edgeNode) mqttio.Message { return dbirth(e, "pump-1") }}
	raw := func(topic string, payload []byte) step {
		return func(*edgeNode) mqttio.Message {
			return mqttio.Message{Topic: topic, Payload: payload, ReceivedAt: received}
		}
	}
	ddata := func(metrics ...sp.Metric) step {
		return func(e *edgeNode) mqttio.Message { return e.msg(sp.DDATA, "pump-1", metrics...) }
	}
	good := nbirth(newEdgeNode()).Payload
	for _, tc := range []struct {
		name      string
		setup     []step
		last      step
		reason    string
		detailHas string
		readings  int  // of the last message
		rebirth   bool // the state needs a rebirth
		noPayload bool // the dead letter has none (a seq gap)
	}{
		{name: "truncated protobuf", setup: born, last: raw("spBv1.0/plant-1/NDATA/edge-7", good[:len(good)-3]),
			reason: ReasonNotProtobuf, detailHas: "unexpected EOF"},
		{name: "JSON on a Sparkplug topic", last: raw("spBv1.0/plant-1/NBIRTH/edge-7", []byte(`{"temperature":21.5}`)),
			reason: ReasonNotProtobuf, detailHas: "not a Sparkplug B protobuf"},
		{name: "empty DDATA payload before birth", last: raw("spBv1.0/plant-1/DDATA/edge-7/pump-1", nil), reason: ReasonNoBirth, rebirth: true},
		{name: "NDATA before NBIRTH", last: func(e *edgeNode) mqttio.Message { return e.msg(sp.NDATA, "", byAlias(2, sp.LongValue(1))) },
			reason: ReasonNoBirth, detailHas: "NBIRTH has not been seen", rebirth: true},
		{name: "DBIRTH before NBIRTH", last: born[1], reason: ReasonNoBirth, rebirth: true},
		{name: "DDATA before DBIRTH", setup: born[:1], last: ddata(byAlias(10, sp.DoubleValue(1))),
			reason: ReasonNoBirth, detailHas: "DBIRTH has not been seen", rebirth: true},
		{name: "unknown alias", setup: born, last: ddata(byAlias(10, sp.DoubleValue(1)), byAlias(99, sp.DoubleValue(1))),
			reason: ReasonUnknownAlias, detailHas: "alias 99", rebirth: true},
		{name: "unknown name without datatype", setup: born, last: ddata(sp.Metric{Name: "nope"}),
			reason: ReasonUnknownAlias, detailHas: `"nope"`, rebirth: true},
		{name: "a node alias on a device", setup: born, last: ddata(byAlias(2, sp.LongValue(1))), reason: ReasonUnknownAlias, rebirth: true},
		{name: "double in string_value", setup: born, last: ddata(byAlias(10, sp.StringValue("21.5"))),
			reason: ReasonWrongType, detailHas: "Double but its value is in string_value"},
		{name: "string in double_value", setup: born, last: ddata(byAlias(12, sp.DoubleValue(1))), reason: ReasonWrongType},
		{name: "boolean in int_value", setup: born, last: ddata(byAlias(11, sp.IntValue(1))), reason: ReasonWrongType},
		{name: "missing value", setup: born, last: ddata(byAlias(10, sp.Value{})), reason: ReasonWrongType},
		{name: "DateTime in double_value", setup: born, last: ddata(byAlias(15, sp.DoubleValue(1))), reason: ReasonWrongType},
		{name: "metric without name or alias", setup: born, last: ddata(sp.Metric{Value: sp.DoubleValue(1)}), reason: ReasonBadSparkplug},
		{name: "birth metric without name", last: func(e *edgeNode) mqttio.Message {
			return e.msg(sp.NBIRTH, "", byAlias(1, sp.DoubleValue(1)))
		}, reason: ReasonBadSparkplug, detailHas: "no name"},
		{name: "alias given twice", setup: born[:1], last: func(e *edgeNode) mqttio.Message {
			return e.msg(sp.DBIRTH, "pump-1", metric("a", 5, sp.Double, sp.DoubleValue(1)), metric("b", 5, sp.Double, sp.DoubleValue(1)))
		}, reason: ReasonBadSparkplug, detailHas: "alias 5"},
		{name: "seq beyond 255", setup: born, last: raw("spBv1.0/plant-1/NDATA/edge-7", (&sp.Payload{Seq: 256, HasSeq: true}).Marshal()),
			reason: ReasonBadSparkplug, detailHas: "seq 256"},
		{name: "seq gap", setup: born, last: func(e *edgeNode) mqttio.Message {
			e.seq += 3
			return e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(1)))
		}, reason: ReasonSeqGap, detailHas: "3 messages missing", readings: 1, rebirth: true, noPayload: true},
		{name: "dataset and template unsupported", setup: born[:1], last: func(e *edgeNode) mqttio.Message {
			return e.msg(sp.DBIRTH, "pump-1", metric("t", 1, sp.Double, sp.DoubleValue(1)),
				metric("table", 2, sp.DataSet, sp.Value{Kind: sp.KindDataSet, Raw: []byte{8, 1}}),
				metric("udt", 3, sp.Template, sp.Value{Kind: sp.KindTemplate}),
				metric("ints", 4, sp.Int32Array, sp.Value{Kind: sp.KindBytes, Raw: []byte{1, 0, 0, 0}}))
		}, reason: ReasonUnsupportedType, detailHas: `"table" (DataSet), "udt" (Template), "ints" (Int32Array)`, readings: 1},
		{name: "NaN", setup: born, last: ddata(byAlias(10, sp.DoubleValue(math.NaN())), byAlias(14, sp.IntValue(1))),
			reason: ReasonNonFinite, detailHas: `"temperature"`, readings: 1},
		{name: "stale death", setup: born[:1], last: func(e *edgeNode) mqttio.Message {
			return e.msg(sp.NDEATH, "", metric(sp.BdSeqMetric, 0, sp.Int64, sp.LongValue(2)))
		}, reason: ReasonStaleDeath, detailHas: "bdSeq 2"},
		{name: "timestamp in seconds", setup: born, last: func(e *edgeNode) mqttio.Message {
			e.at = time.Unix(e.at.Unix()/1000, 0)
			return e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(1)))
		}, reason: ReasonBadTimestamp, detailHas: "epoch milliseconds"},
		{name: "metric timestamp in the future", setup: born, last: ddata(sp.Metric{Alias: 10, HasAlias: true, Value: sp.DoubleValue(1),
			Timestamp: uint64(received.Add(48 * time.Hour).UnixMilli())}), reason: ReasonBadTimestamp, detailHas: `metric "temperature"`},
		{name: "huge payload", last: raw("spBv1.0/plant-1/NBIRTH/edge-7", make([]byte, DefaultMaxPayloadBytes+1)), reason: ReasonTooLarge},
		{name: "not a Sparkplug topic", last: raw("spBv1.0/plant-1/NDATA", good), reason: ReasonNoDeviceID, detailHas: "has 3 levels"},
		{name: "unknown message type", last: raw("spBv1.0/plant-1/NINFO/edge-7", good), reason: ReasonNoDeviceID, detailHas: "NINFO"},
		{name: "device id with '#'", last: raw("spBv1.0/plant-1/DDATA/edge-7/p#", good), reason: ReasonNoDeviceID, detailHas: "'#'"},
		{name: "other topic", last: raw("devices/d1/telemetry", good), reason: ReasonNoDeviceID, detailHas: `"spBv1.0/#"`},
		{name: "topic not UTF-8", last: raw("spBv1.0/plant-1/NDATA/\xff", good), reason: ReasonInvalidUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sparkplugParser(t)
			e := newEdgeNode()
			for _, s := range tc.setup {
				_, ds := p.ParseAll(s(e), nil, nil)
				require.Empty(t, ds)
			}
			m := tc.last(e)
			rs, ds := p.ParseAll(m, nil, nil)
			require.Len(t, ds, 1, "readings %+v", rs)
			dl := ds[0]
			assert.Equal(t, tc.reason, dl.Reason, dl.Detail)
			assert.Contains(t, dl.Detail, tc.detailHas)
			assert.Equal(t, m.Topic, dl.Topic)
			assert.Equal(t, received, dl.ReceivedAt)
			if tc.noPayload {
				assert.Empty(t, dl.Payload)
			} else {
				assert.Equal(t, m.Payload, dl.Payload)
			}
			assert.Len(t, rs, tc.readings)
			assert.Less(t, len(dl.Detail), 600, dl.Detail)

			// The same through the node's decoder, which says when to ask
			// for a rebirth.
			if topic, err := sp.ParseTopic(m.Topic); err == nil && topic.IsTelemetry() && tc.reason != ReasonTooLarge {
				n := newSpNode()
				e2 := newEdgeNode()
				for _, s := range tc.setup {
					env, _ := p.envelope(s(e2))
					tp, _ := sp.ParseTopic(env.m.Topic)
					p.spScan.apply(n, &env, tp, nil, nil)
				}
				env, dl := p.envelope(tc.last(e2))
				if dl == nil {
					_, _, rebirth := p.spScan.apply(n, &env, topic, nil, nil)
					assert.Equal(t, tc.rebirth, rebirth)
				}
			}
		})
	}
}

// Commands and host states are not telemetry: neither readings nor dead
// letters.
func TestSparkplugCommandsIgnored(t *testing.T) {
	p := sparkplugParser(t)
	for _, topic := range []string{"spBv1.0/plant-1/NCMD/edge-7", "spBv1.0/plant-1/DCMD/edge-7/pump-1", "spBv1.0/STATE/scada"} {
		rs, ds := p.ParseAll(mqttio.Message{Topic: topic, Payload: sp.RebirthRequest(received), ReceivedAt: received}, nil, nil)
		assert.Empty(t, rs, topic)
		assert.Empty(t, ds, topic)
	}
}

// Redelivered messages (an at-least-once source) are decoded again but
// change no state: a second NBIRTH copy does not reset the seq, an older
// DDATA does not move it back.
func TestSparkplugRedeliveries(t *testing.T) {
	p := sparkplugParser(t)
	e := newEdgeNode()
	birth := nbirth(e)
	dbirthMsg := dbirth(e, "pump-1")
	first := e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(1)))
	second := e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(2)))
	rs, ds := parseAll(p, birth, dbirthMsg, first, second, birth, dbirthMsg, first)
	require.Empty(t, ds)
	require.Len(t, rs, 7)
	assert.Equal(t, map[string]float64{"temperature": 1}, rs[6].Metrics)
	rs, ds = parseAll(p, e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(3))))
	require.Empty(t, ds, "the seq continues after the copies")
	assert.Equal(t, map[string]float64{"temperature": 3}, rs[0].Metrics)

	// A new NBIRTH (a new session) starts the seq again and forgets the
	// devices.
	e.at = e.at.Add(time.Second)
	_, ds = parseAll(p, nbirth(e), e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(4))))
	require.Len(t, ds, 1)
	assert.Equal(t, ReasonNoBirth, ds[0].Reason)
}

// seq wraps from 255 to 0.
func TestSparkplugSeqWraps(t *testing.T) {
	p := sparkplugParser(t)
	e := newEdgeNode()
	msgs := []mqttio.Message{nbirth(e)}
	for i := range 300 {
		msgs = append(msgs, e.msg(sp.NDATA, "", byAlias(2, sp.LongValue(uint64(i)))))
	}
	rs, ds := parseAll(p, msgs...)
	require.Empty(t, ds)
	assert.Len(t, rs, 301)
}

func TestSparkplugDeviceIDTemplates(t *testing.T) {
	topic := sp.Topic{Group: "g", Type: sp.DDATA, EdgeNode: "e", Device: "d"}
	node := topic
	node.Type, node.Device = sp.NDATA, ""
	for tmpl, want := range map[string][2]string{
		DefaultSparkplugDeviceID:                     {"g/e/d", "g/e"},
		"{edge_node_id}.{device_id}":                 {"e.d", "e"},
		"{device_id}@{edge_node_id}":                 {"d@e", "e"},
		"site-{group_id}-{edge_node_id}:{device_id}": {"site-g-e:d", "site-g-e"},
		"{device_id}":                                {"", ""}, // refused below
	} {
		idt, err := parseIDTemplate(tmpl)
		if tmpl == "{device_id}" {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err, tmpl)
		dev, n := idt.ids(topic)
		assert.Equal(t, want[0], dev, tmpl)
		assert.Equal(t, want[1], n, tmpl)
		own, n2 := idt.ids(node)
		assert.Equal(t, want[1], own, tmpl)
		assert.Equal(t, want[1], n2, tmpl)
	}
	for _, bad := range []string{"", "{edge_node_id}", "{edge_node_id}/{device_id}/{device_id}", "{node}/{device_id}", "{edge_node_id}+{device_id}",
		"{edge_node_id}/{device_id", "{edge_node_id}}/{device_id}", "{group_id}{group_id}{edge_node_id}{device_id}"} {
		_, err := NewParser(SparkplugDeviceID(bad))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "option SparkplugDeviceID", bad)
	}
}

func TestSparkplugStateCoderRoundTrips(t *testing.T) {
	p := sparkplugParser(t)
	e := newEdgeNode()
	_, ds := parseAll(p, nbirth(e), dbirth(e, "pump-1"), dbirth(e, "pump-2"))
	require.Empty(t, ds)
	n := p.spMem["plant-1"]["edge-7"]
	require.NotNil(t, n)
	for _, b := range []spBirth{n.birth, {BdSeq: -1}} {
		enc, err := encodeBirth(b)
		require.NoError(t, err)
		got, err := decodeBirth(enc)
		require.NoError(t, err)
		if b.Devices == nil {
			b.Node = spMetrics{Aliases: map[uint64]spDef{}, Names: map[string]sp.DataType{}}
		}
		assert.Equal(t, b, got)
		for i := range enc {
			_, err := decodeBirth(enc[:i])
			require.Error(t, err, "%d of %d bytes", i, len(enc))
		}
	}
	_, err := decodeBirth([]byte{7})
	require.ErrorContains(t, err, "coder version 7")
}

func FuzzParseSparkplug(f *testing.F) {
	e := newEdgeNode()
	for _, m := range []mqttio.Message{nbirth(e), dbirth(e, "pump-1"), e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(1)))} {
		f.Add(m.Topic, m.Payload)
	}
	f.Add("spBv1.0/plant-1/NDEATH/edge-7", []byte{})
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		// Each input after the same births, so that DATA reach the
		// alias tables.
		p := sparkplugParser(t)
		e := newEdgeNode()
		parseAll(p, nbirth(e), dbirth(e, "pump-1"))
		m := mqttio.Message{Topic: topic, Payload: payload, ReceivedAt: received}
		rs, ds := p.ParseAll(m, nil, nil)
		if len(rs)+len(ds) > 0 { // commands and host states make neither
			checkParsed(t, m, rs, ds)
		}
		for _, r := range rs {
			if !strings.HasPrefix(r.DeviceID, "plant-1/") && !strings.Contains(topic, "/"+r.DeviceID) && r.DeviceID == "" {
				t.Fatalf("device id %q of topic %q", r.DeviceID, topic)
			}
		}
	})
}
