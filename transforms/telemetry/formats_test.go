package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

func TestBatch(t *testing.T) {
	p := mustParser(t, PayloadFormat(FormatBatch), TopicTemplate("gateways/{device_id}/telemetry/#"))
	elems := []string{
		`{"device_id":"ble-1","ts":1714561200500,"temperature":21.5,"env":{"humidity":40}}`,
		`{"device_id":"ble-1","ts":1714561200500,"temperature":21.5,"env":{"humidity":40}}`,
		`{"temperature":19,"gateway_id":"spoofed"}`,
		`{"device_id":"ble-2","rssi":-70,"name":"porch"}`,
	}
	payload := `{"ts":"2024-05-01T11:00:00Z","battery":3.9,"fw":"2.0","readings":[` + "\n\t" + strings.Join(elems, ",\n\t") + "]}"
	m := msg("gateways/gw-1/telemetry/ble", payload)
	rs, ds := p.ParseAll(m, nil, nil)
	require.Empty(t, ds)
	hour := received.Add(-time.Hour)
	elem := func(i int) []byte { return []byte(elems[i]) }
	want := []Reading{
		{DeviceID: "gw-1", EventTime: hour, TimeSource: TimeFromPayload, Metrics: map[string]float64{"battery": 3.9},
			Attributes: map[string]string{"fw": "2.0"}, PayloadHash: hash(m.Payload)},
		{DeviceID: "ble-1", EventTime: hour.Add(500 * time.Millisecond), TimeSource: TimeFromPayload,
			Metrics: map[string]float64{"temperature": 21.5, "env.humidity": 40}, Attributes: map[string]string{AttrGateway: "gw-1"}, PayloadHash: hash(elem(0))},
		{DeviceID: "ble-1", EventTime: hour.Add(500 * time.Millisecond), TimeSource: TimeFromPayload,
			Metrics: map[string]float64{"temperature": 21.5, "env.humidity": 40}, Attributes: map[string]string{AttrGateway: "gw-1"}, PayloadHash: hash(elem(1))},
		// No device of its own: the gateway's, and its attributes are its own.
		{DeviceID: "gw-1", EventTime: hour, TimeSource: TimeFromPayload, Metrics: map[string]float64{"temperature": 19},
			Attributes: map[string]string{"gateway_id": "spoofed"}, PayloadHash: hash(elem(2))},
		{DeviceID: "ble-2", EventTime: hour, TimeSource: TimeFromPayload, Metrics: map[string]float64{"rssi": -70},
			Attributes: map[string]string{AttrGateway: "gw-1", "name": "porch"}, PayloadHash: hash(elem(3))},
	}
	require.Len(t, rs, len(want))
	for i := range want {
		want[i].Kind, want[i].Topic, want[i].ReceivedAt = "ble", m.Topic, received
		assert.Equal(t, want[i], rs[i], "reading %d", i)
	}
	assert.Equal(t, rs[1].PayloadHash, rs[2].PayloadHash, "a copy of an element is a copy of its reading")

	// Parse gives the first reading of a batch.
	r, dl := p.Parse(m)
	require.Nil(t, dl)
	assert.Equal(t, want[0], r)
}

func TestBatchMalformed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []Option
		payload   string
		reasons   []string // of the dead letters, in order
		readings  int
		detailHas string
		elemBytes string // the first dead letter's payload, when an element's
	}{
		{name: "too many elements", opts: []Option{MaxBatch(2)}, payload: `[{"t":1},{"t":2},{"t":3}]`, reasons: []string{ReasonTooLarge}, detailHas: "option MaxBatch"},
		{name: "huge batch", payload: "[" + strings.Repeat(`{"t":1},`, 1000) + `{"t":1}]`, reasons: []string{ReasonTooLarge}, detailHas: "more than 1000"},
		{name: "bad elements among good ones", payload: `[{"t":1},7,{"device_id":"x#y","t":2},{"device_id":"ok","t":3},{"device_id":["a"],"t":4}]`,
			reasons: []string{ReasonNotObject, ReasonBadDeviceID, ReasonBadDeviceID}, readings: 2, detailHas: "batch element 1 of 5", elemBytes: "7"},
		{name: "deep element", opts: []Option{MaxDepth(2)}, payload: `[{"a":{"b":{"c":1}}}]`, reasons: []string{ReasonTooDeep}, elemBytes: `{"a":{"b":{"c":1}}}`},
		{name: "element with a huge array", payload: `[{"w":[` + strings.Repeat("1,", 1000) + `1]},{"t":1}]`, reasons: []string{ReasonTooManyMetrics}, readings: 1, elemBytes: `{"w":[` + strings.Repeat("1,", 1000) + `1]}`},
		{name: "fractional device id", payload: `[{"device_id":1.5,"t":1}]`, reasons: []string{ReasonBadDeviceID}, detailHas: `the number "1.5"`, elemBytes: `{"device_id":1.5,"t":1}`},
		{name: "empty device id", payload: `[{"device_id":"","t":1}]`, reasons: []string{ReasonBadDeviceID}, detailHas: "empty", elemBytes: `{"device_id":"","t":1}`},
		{name: "bad envelope timestamp", payload: `{"ts":"noon","readings":[{"t":1}]}`, reasons: []string{ReasonBadTimestamp}, detailHas: "the object around the batch"},
		{name: "envelope too deep", opts: []Option{MaxDepth(1)}, payload: `{"meta":{"a":1},"readings":[{"t":1}]}`, reasons: []string{ReasonTooDeep}},
		{name: "batch field not an array", payload: `{"readings":"none"}`, reasons: []string{ReasonNotBatch}},
		{name: "custom batch field missing", opts: []Option{BatchField("items")}, payload: `{"readings":[{"t":1}]}`, reasons: []string{ReasonNotBatch}, detailHas: `"items"`},
		{name: "number", payload: `42`, reasons: []string{ReasonNotBatch}, detailHas: "JSON number"},
		{name: "empty", payload: ``, reasons: []string{ReasonNotJSON}},
		{name: "not UTF-8", payload: "[{\"t\":\"\xff\"}]", reasons: []string{ReasonInvalidUTF8}},
		{name: "envelope only, no elements", payload: `{"readings":[]}`, reasons: []string{ReasonNoMetrics}, detailHas: "no elements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParser(t, append([]Option{PayloadFormat(FormatBatch), TopicTemplate("gateways/{device_id}/telemetry")}, tc.opts...)...)
			m := msg("gateways/gw-1/telemetry", tc.payload)
			rs, ds := p.ParseAll(m, nil, nil)
			assert.Len(t, rs, tc.readings)
			var reasons []string
			for _, d := range ds {
				reasons = append(reasons, d.Reason)
				assert.Equal(t, m.Topic, d.Topic)
				assert.Equal(t, received, d.ReceivedAt)
				assert.Contains(t, tc.payload, string(d.Payload))
				assert.Less(t, len(d.Detail), 600)
			}
			assert.Equal(t, tc.reasons, reasons)
			require.NotEmpty(t, ds)
			assert.Contains(t, ds[0].Detail, tc.detailHas)
			if tc.elemBytes != "" {
				assert.Equal(t, tc.elemBytes, string(ds[0].Payload))
			} else {
				assert.Equal(t, tc.payload, string(ds[0].Payload))
			}
		})
	}
	// An envelope with metrics and no elements is its own reading.
	p := mustParser(t, PayloadFormat(FormatBatch))
	rs, ds := p.ParseAll(msg("devices/gw/telemetry", `{"battery":3.1,"readings":[]}`), nil, nil)
	require.Empty(t, ds)
	require.Len(t, rs, 1)
	assert.Equal(t, "gw", rs[0].DeviceID)
}

func TestValue(t *testing.T) {
	p := mustParser(t, PayloadFormat(FormatValue), TopicTemplate("devices/{device_id}/values/{metric}"))
	for payload, want := range map[string]float64{"21.5": 21.5, " -3e2\n": -300, "0": 0, "true": 1, "false": 0, "1e-400": 0} {
		m := msg("devices/meter-1/values/power", payload)
		r, dl := p.Parse(m)
		require.Nil(t, dl, payload)
		assert.Equal(t, Reading{DeviceID: "meter-1", Topic: m.Topic, EventTime: received, ReceivedAt: received, TimeSource: TimeFromReceived,
			Metrics: map[string]float64{"power": want}, PayloadHash: hash(m.Payload)}, r, payload)
	}
	// Without {metric}, the kind names the metric.
	p = mustParser(t, PayloadFormat(FormatValue))
	r, dl := p.Parse(msg("devices/m2/telemetry/voltage/l1", "230"))
	require.Nil(t, dl)
	assert.Equal(t, map[string]float64{"voltage": 230}, r.Metrics)
	assert.Equal(t, "voltage", r.Kind)

	for payload, reason := range map[string]string{
		`"21.5"`: ReasonNotNumber, `21.5 22`: ReasonNotNumber, `NaN`: ReasonNotNumber, `Inf`: ReasonNotNumber, `0x10`: ReasonNotNumber,
		`+1`: ReasonNotNumber, `.5`: ReasonNotNumber, `[1]`: ReasonNotNumber, `null`: ReasonNotNumber, ``: ReasonNotNumber,
		`1e999`: ReasonNonFinite, "\xff": ReasonInvalidUTF8, `1_000`: ReasonNotNumber,
	} {
		_, dl := p.Parse(msg("devices/m2/telemetry/voltage", payload))
		if assert.NotNil(t, dl, payload) {
			assert.Equal(t, reason, dl.Reason, payload)
			assert.Equal(t, payload, string(dl.Payload))
		}
	}
	_, dl = p.Parse(msg("devices/m2/telemetry", "1"))
	require.NotNil(t, dl)
	assert.Equal(t, ReasonNoMetricName, dl.Reason)
}

// Routes pick the format by topic, first match first; the TopicTemplate
// and PayloadFormat come last.
func TestRoutes(t *testing.T) {
	p := mustParser(t,
		Route("devices/{device_id}/telemetry/raw/#", FormatValue), // the metric is the level under raw
		Route("devices/{device_id}/values/{metric}", FormatValue),
		Route("devices/{device_id}/telemetry/{kind}", FormatBatch),
		TopicTemplate("devices/{device_id}/#"))
	r, dl := p.Parse(msg("devices/d/values/t", "1"))
	require.Nil(t, dl)
	assert.Equal(t, map[string]float64{"t": 1}, r.Metrics)
	rs, ds := p.ParseAll(msg("devices/d/telemetry/env", `[{"t":1},{"t":2}]`), nil, nil)
	require.Empty(t, ds)
	assert.Len(t, rs, 2)
	r, dl = p.Parse(msg("devices/d/status", `{"t":1}`))
	require.Nil(t, dl)
	assert.Equal(t, "status", r.Kind)
	_, dl = p.Parse(msg("other/d", `{"t":1}`))
	require.NotNil(t, dl)
	assert.Equal(t, ReasonNoDeviceID, dl.Reason)
	assert.Contains(t, dl.Detail, `any of the topic templates "devices/{device_id}/telemetry/raw/#", "devices/{device_id}/values/{metric}", "devices/{device_id}/telemetry/{kind}", "devices/{device_id}/#"`)
	r, dl = p.Parse(msg("devices/d/telemetry/raw/volts", `230`))
	require.Nil(t, dl, "the first route decides")
	assert.Equal(t, map[string]float64{"volts": 230}, r.Metrics)
	_, dl = p.Parse(msg("devices/d/telemetry/raw", `{"t":1}`))
	require.NotNil(t, dl)
	assert.Equal(t, ReasonNoMetricName, dl.Reason)
}

func TestFormatOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{[]Option{PayloadFormat("xml")}, `option PayloadFormat: format "xml" is not one of json, batch, value, sparkplug_b, influx`},
		{[]Option{Route("a/{device_id}", "csv")}, "option Route: format"},
		{[]Option{Route("a/+", FormatJSON)}, "option Route: \"a/+\" must have {device_id} exactly once"},
		{[]Option{Route("a/{device_id}/{metric}", FormatJSON)}, "{metric} names the metric of the value format only"},
		{[]Option{Route("a/{device_id}", FormatValue)}, "needs a level that names the metric"},
		{[]Option{Route("a/{device_id}/{metric}/{metric}", FormatValue)}, "{metric} more than once"},
		{[]Option{Route("spBv1.0/{device_id}/#", FormatSparkplugB)}, "has no placeholders"},
		{[]Option{Route("sp/#", FormatSparkplugB)}, "starts with spBv1.0/"},
		{[]Option{PayloadFormat(FormatSparkplugB), TopicTemplate("devices/{device_id}/telemetry")}, "option TopicTemplate: \"devices/{device_id}/telemetry\": a sparkplug_b template"},
		{[]Option{TopicTemplate("spBv1.0/#")}, "option TopicTemplate"},
		{[]Option{RebirthRequests(time.Minute)}, "option RebirthRequests: needs a sparkplug_b format"},
		{[]Option{PayloadFormat(FormatSparkplugB), RebirthRequests(0)}, "option RebirthRequests: must be positive"},
		{[]Option{MaxDepth(0)}, "option MaxDepth: must be positive, got 0"},
		{[]Option{MaxMetrics(-1)}, "option MaxMetrics"},
		{[]Option{MaxBatch(0)}, "option MaxBatch"},
		{[]Option{Arrays("flat")}, `option Arrays: "flat" is not "indexed" or "ignored"`},
		{[]Option{BatchField("")}, "option BatchField"},
		{[]Option{DeviceIDField("\xff")}, "option DeviceIDField"},
	} {
		_, err := NewParser(tc.opts...)
		require.Error(t, err, tc.want)
		assert.Contains(t, err.Error(), tc.want)
		assert.True(t, strings.HasPrefix(err.Error(), "telemetry: "), err.Error())
	}
	// PayloadFormat sparkplug_b alone reads the whole namespace.
	p := mustParser(t, PayloadFormat(FormatSparkplugB))
	assert.Equal(t, DefaultSparkplugTemplate, p.cfg.TopicTemplate)
}

func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		template, format string
		want             []string
	}{
		{DefaultTopicTemplate, FormatJSON, []string{"devices/+/telemetry/#"}},
		{"devices/{device_id}/values/{metric}", FormatValue, []string{"devices/+/values/+"}},
		{"site/+/{device_id}/{kind}", FormatBatch, []string{"site/+/+/+"}},
		{"spBv1.0/#", FormatSparkplugB, []string{"spBv1.0/+/NBIRTH/+", "spBv1.0/+/NDATA/+", "spBv1.0/+/NDEATH/+",
			"spBv1.0/+/DBIRTH/+/+", "spBv1.0/+/DDATA/+/+", "spBv1.0/+/DDEATH/+/+"}},
		{"spBv1.0/plant-1/#", FormatSparkplugB, []string{"spBv1.0/plant-1/NBIRTH/+", "spBv1.0/plant-1/NDATA/+", "spBv1.0/plant-1/NDEATH/+",
			"spBv1.0/plant-1/DBIRTH/+/+", "spBv1.0/plant-1/DDATA/+/+", "spBv1.0/plant-1/DDEATH/+/+"}},
		{"spBv1.0/plant-1/DDATA/#", FormatSparkplugB, []string{"spBv1.0/plant-1/DDATA/#"}},
	} {
		got, err := Filter(tc.template, tc.format)
		require.NoError(t, err, tc.template)
		assert.Equal(t, tc.want, got, tc.template)
		for _, f := range got {
			assert.NoError(t, mqttio.ValidateFilter(f))
		}
	}
	_, err := Filter("devices/+/telemetry", FormatJSON)
	assert.ErrorContains(t, err, "{device_id}")
	_, err = Filter(DefaultTopicTemplate, "yaml")
	assert.ErrorContains(t, err, "yaml")
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`[{"device_id":"ble-1","ts":"2024-05-01T11:59:58Z","temperature":21.5},{"device_id":17,"t":1}]`,
		`{"ts":1714564790000,"battery":3.9,"readings":[{"device_id":"a/b","t":1},7,{"t":{"u":[1,2]}}]}`,
		`{"readings":[]}`,
	} {
		f.Add([]byte(s))
	}
	p := mustParser(f, PayloadFormat(FormatBatch), MaxBatch(50))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m := msg("devices/gw-1/telemetry", string(payload))
		rs, ds := p.ParseAll(m, nil, nil)
		checkParsed(t, m, rs, ds)
		for _, r := range rs {
			if r.DeviceID != "gw-1" && (strings.ContainsRune(r.DeviceID, '/') || r.Attributes[AttrGateway] != "gw-1") {
				t.Fatalf("reading of %q without its gateway: %+v", r.DeviceID, r)
			}
		}
	})
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"21.5", " -3e2\n", "true", "1e999", `"1"`} {
		f.Add("devices/m/values/power", []byte(s))
	}
	p := mustParser(f, PayloadFormat(FormatValue), TopicTemplate("devices/{device_id}/values/{metric}"))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		m := msg(topic, string(payload))
		r, dl := p.Parse(m)
		checkOne(t, m, r, dl)
		if dl == nil && len(r.Metrics) != 1 {
			t.Fatalf("value reading with %d metrics", len(r.Metrics))
		}
	})
}
