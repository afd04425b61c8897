package telemetry

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func influxParser(t testing.TB, opts ...Option) *Parser {
	return mustParser(t, append([]Option{PayloadFormat(FormatInflux), TopicTemplate("telegraf/{device_id}/#")}, opts...)...)
}

func TestInflux(t *testing.T) {
	ns := received.Add(-time.Second).UnixNano()
	at := func(d time.Duration) string { return strconv.FormatInt(ns+int64(d), 10) }
	payload := strings.Join([]string{
		"# Telegraf",
		"cpu,cpu=cpu-total usage_idle=98.5,usage_user=1.25 " + at(0),
		"mem used=1024i,free=2048u,available_percent=66.6 " + at(0),
		`env,device_id=ble-7,room=lab\ 2 temperature=21.5,ok=true,label="a \"b\"" ` + at(time.Millisecond),
		"disk used_percent=1e-2",
		"",
	}, "\n")
	m := msg("telegraf/host-1/metrics", payload)
	rs, ds := influxParser(t).ParseAll(m, nil, nil)
	require.Empty(t, ds)
	base := Reading{Kind: "metrics", Topic: m.Topic, ReceivedAt: received, PayloadHash: hash(m.Payload)}
	want := []Reading{
		{DeviceID: "host-1", EventTime: received.Add(-time.Second), TimeSource: TimeFromPayload,
			Metrics:    map[string]float64{"cpu.usage_idle": 98.5, "cpu.usage_user": 1.25, "mem.used": 1024, "mem.free": 2048, "mem.available_percent": 66.6},
			Attributes: map[string]string{"cpu": "cpu-total"}},
		{DeviceID: "ble-7", EventTime: received.Add(-time.Second + time.Millisecond), TimeSource: TimeFromPayload,
			Metrics:    map[string]float64{"env.temperature": 21.5},
			Attributes: map[string]string{"room": "lab 2", "env.ok": "true", "env.label": `a "b"`, AttrGateway: "host-1"}},
		{DeviceID: "host-1", EventTime: received, TimeSource: TimeFromReceived, Metrics: map[string]float64{"disk.used_percent": 0.01}},
	}
	require.Len(t, rs, len(want))
	for i := range want {
		w := base
		w.DeviceID, w.EventTime, w.TimeSource, w.Metrics, w.Attributes = want[i].DeviceID, want[i].EventTime, want[i].TimeSource, want[i].Metrics, want[i].Attributes
		assert.Equal(t, w, rs[i], "reading %d", i)
	}

	// Telegraf's host tag, timestamps in seconds.
	p := influxParser(t, DeviceIDField("host"), InfluxPrecision(time.Second))
	rs, ds = p.ParseAll(msg("telegraf/gw/metrics", "system,host=edge-3 load1=0.5 "+strconv.FormatInt(received.Unix(), 10)), nil, nil)
	require.Empty(t, ds)
	require.Len(t, rs, 1)
	assert.Equal(t, "edge-3", rs[0].DeviceID)
	assert.Equal(t, received, rs[0].EventTime)
}

func TestInfluxMalformed(t *testing.T) {
	ok := "cpu usage=1"
	for _, tc := range []struct {
		name      string
		opts      []Option
		payload   string
		reasons   []string
		readings  int
		detailHas string
	}{
		{name: "no fields", payload: "cpu", reasons: []string{ReasonNotLineProtocol}, detailHas: "no fields"},
		{name: "field without value", payload: "cpu usage=", reasons: []string{ReasonNotLineProtocol}, detailHas: "has no value"},
		{name: "field without key", payload: "cpu =1", reasons: []string{ReasonNotLineProtocol}, detailHas: "not key=value"},
		{name: "bad tag", payload: "cpu,host usage=1", reasons: []string{ReasonNotLineProtocol}, detailHas: "tag"},
		{name: "no measurement", payload: ",host=a usage=1", reasons: []string{ReasonNotLineProtocol}, detailHas: "no measurement"},
		{name: "unclosed string", payload: `cpu name="abc`, reasons: []string{ReasonNotLineProtocol}, detailHas: "not closed"},
		{name: "not a number", payload: "cpu usage=abc", reasons: []string{ReasonNotLineProtocol}, detailHas: "is not a float"},
		{name: "NaN", payload: "cpu usage=NaN", reasons: []string{ReasonNotLineProtocol}},
		{name: "hex", payload: "cpu usage=0x10", reasons: []string{ReasonNotLineProtocol}},
		{name: "huge float", payload: "cpu usage=1e999", reasons: []string{ReasonNonFinite}},
		{name: "integer overflow", payload: "cpu usage=99999999999999999999i", reasons: []string{ReasonNotLineProtocol}, detailHas: "64-bit integer"},
		{name: "negative unsigned", payload: "cpu usage=-1u", reasons: []string{ReasonNotLineProtocol}},
		{name: "timestamp in seconds", payload: "cpu usage=1 " + strconv.FormatInt(received.Unix(), 10), reasons: []string{ReasonBadTimestamp}, detailHas: "InfluxPrecision"},
		{name: "timestamp words", payload: "cpu usage=1 now", reasons: []string{ReasonBadTimestamp}},
		{name: "timestamp overflow", opts: []Option{InfluxPrecision(time.Second)}, payload: "cpu usage=1 9223372036854775807", reasons: []string{ReasonBadTimestamp}, detailHas: "out of range"},
		{name: "device tag unsafe", payload: "cpu,device_id=a/b usage=1", reasons: []string{ReasonBadDeviceID}},
		{name: "only comments", payload: "# nothing\n\n", reasons: []string{ReasonNotLineProtocol}, detailHas: "no line"},
		{name: "empty", payload: "", reasons: []string{ReasonNotLineProtocol}},
		{name: "not UTF-8", payload: "cpu name=\"\xff\"", reasons: []string{ReasonInvalidUTF8}},
		{name: "too many lines", opts: []Option{MaxBatch(2)}, payload: ok + "\n" + ok + "\n" + ok, reasons: []string{ReasonTooLarge}},
		{name: "too many metrics", opts: []Option{MaxMetrics(2)}, payload: "cpu a=1,b=2\nmem c=3", reasons: []string{ReasonTooManyMetrics}, readings: 1},
		{name: "huge line", payload: "cpu " + manyFields(2000), reasons: []string{ReasonTooManyMetrics}, detailHas: "more than 1000"},
		{name: "bad lines among good ones", payload: ok + "\ncpu\n" + ok + ",x=2\nmem x=y", reasons: []string{ReasonNotLineProtocol, ReasonNotLineProtocol}, readings: 1, detailHas: "line 2 of 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := msg("telegraf/host-1/metrics", tc.payload)
			rs, ds := influxParser(t, tc.opts...).ParseAll(m, nil, nil)
			assert.Len(t, rs, tc.readings)
			var reasons []string
			for _, d := range ds {
				reasons = append(reasons, d.Reason)
				assert.Contains(t, tc.payload, string(d.Payload))
				assert.Less(t, len(d.Detail), 600)
			}
			assert.Equal(t, tc.reasons, reasons)
			if len(ds) > 0 {
				assert.Contains(t, ds[0].Detail, tc.detailHas)
			}
		})
	}
	_, err := NewParser(InfluxPrecision(time.Minute))
	assert.ErrorContains(t, err, "option InfluxPrecision")
}

func FuzzParseInflux(f *testing.F) {
	for _, s := range []string{
		"cpu,cpu=cpu-total usage_idle=98.5,usage_user=1.25 1714564799000000000",
		`env,device_id=ble-7,room=lab\ 2 temperature=21.5,ok=true,label="a \"b\"" 1714564799001000000`,
		"# c\nmem used=1024i,free=2048u\n\ndisk x=1e-2",
		`a\,b,c\=d=e\ f g\ h="i,j k" 1`,
	} {
		f.Add([]byte(s))
	}
	p := influxParser(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		m := msg("telegraf/host-1/metrics", string(payload))
		rs, ds := p.ParseAll(m, nil, nil)
		checkParsed(t, m, rs, ds)
	})
}

// manyFields is n distinct fields, f0=0,f1=1,...
func manyFields(n int) string {
	fields := make([]string, n)
	for i := range fields {
		fields[i] = "f" + strconv.Itoa(i) + "=" + strconv.Itoa(i)
	}
	return strings.Join(fields, ",")
}
