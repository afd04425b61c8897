package telemetry

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var received = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func msg(topic, payload string) mqttio.Message {
	return mqttio.Message{Topic: topic, Payload: []byte(payload), QoS: 1, ReceivedAt: received}
}

func mustParser(t testing.TB, opts ...Option) *Parser {
	t.Helper()
	p, err := NewParser(opts...)
	require.NoError(t, err)
	return p
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name  string
		opts  []Option
		msg   mqttio.Message
		want  Reading
		check func(t *testing.T, r Reading)
	}{
		{
			name: "ts RFC 3339",
			msg:  msg("devices/s1/telemetry", `{"ts":"2024-05-01T11:59:58Z","temperature":21.5,"humidity":40}`),
			want: Reading{DeviceID: "s1", EventTime: received.Add(-2 * time.Second), TimeSource: TimeFromPayload,
				Metrics: map[string]float64{"temperature": 21.5, "humidity": 40}},
		},
		{
			name: "ts RFC 3339 fractional with offset, kind",
			msg:  msg("devices/s1/telemetry/climate", `{"ts":"2024-05-01T13:59:58.123+02:00","t":1}`),
			want: Reading{DeviceID: "s1", Kind: "climate", EventTime: time.Date(2024, 5, 1, 11, 59, 58, 123e6, time.UTC), TimeSource: TimeFromPayload,
				Metrics: map[string]float64{"t": 1}},
		},
		{
			name: "ts millis integer, attributes",
			msg:  msg("devices/s2/telemetry/power", `{"ts":1714564798000,"voltage":229.7,"unit":"V","on":true,"off":false}`),
			want: Reading{DeviceID: "s2", Kind: "power", EventTime: time.UnixMilli(1714564798000).UTC(), TimeSource: TimeFromPayload,
				Metrics:    map[string]float64{"voltage": 229.7},
				Attributes: map[string]string{"unit": "V", "on": "true", "off": "false"}},
		},
		{
			name: "ts millis fraction, kind is the first level under '#'",
			msg:  msg("devices/s2/telemetry/power/phase-1", `{"ts":1714564798000.5,"v":230}`),
			want: Reading{DeviceID: "s2", Kind: "power", EventTime: time.Unix(1714564798, 500_000).UTC(), TimeSource: TimeFromPayload,
				Metrics: map[string]float64{"v": 230}},
		},
		{
			name: "no ts: receive time",
			msg:  msg("devices/s3/telemetry", `{"battery":3.71,"fw":"1.4.2"}`),
			want: Reading{DeviceID: "s3", EventTime: received, TimeSource: TimeFromReceived,
				Metrics: map[string]float64{"battery": 3.71}, Attributes: map[string]string{"fw": "1.4.2"}},
		},
		{
			name: "nested objects and arrays flattened, nulls ignored, duplicate key last wins, big exponent fine",
			msg:  msg("devices/s3/telemetry", ` {"loc":{"lat":1,"pos":{"x":-2}},"a":[1,{"b":2},"up"],"n":null,"c":1,"c":2,"big":1e300,"tiny":1e-400,"e":{},"f":[]} `),
			want: Reading{DeviceID: "s3", EventTime: received, TimeSource: TimeFromReceived,
				Metrics:    map[string]float64{"loc.lat": 1, "loc.pos.x": -2, "a.0": 1, "a.1.b": 2, "c": 2, "big": 1e300, "tiny": 0},
				Attributes: map[string]string{"a.2": "up"}},
		},
		{
			name: "arrays ignored, nested timestamp field",
			opts: []Option{Arrays(ArraysIgnored), TimestampField("meta.time")},
			msg:  msg("devices/s3/telemetry", `{"meta":{"time":"2024-05-01T11:00:00Z","fw":"2.1"},"env":{"t":21.5,"h":[40,41]},"ts":5}`),
			want: Reading{DeviceID: "s3", EventTime: received.Add(-time.Hour), TimeSource: TimeFromPayload,
				Metrics: map[string]float64{"env.t": 21.5, "ts": 5}, Attributes: map[string]string{"meta.fw": "2.1"}},
		},
		{
			name: "nesting up to MaxDepth",
			opts: []Option{MaxDepth(3)},
			msg:  msg("devices/s3/telemetry", `{"a":{"b":{"c":1}},"d":[[2]],"e\u002ef":3}`),
			want: Reading{DeviceID: "s3", EventTime: received, TimeSource: TimeFromReceived,
				Metrics: map[string]float64{"a.b.c": 1, "d.0.0": 2, "e.f": 3}},
		},
		{
			name: "custom template with {kind} and '+', custom ts field",
			opts: []Option{TopicTemplate("site/+/{device_id}/{kind}"), TimestampField("time")},
			msg:  msg("site/berlin/pump-9/pressure", `{"time":"2024-05-01T11:00:00Z","bar":2.5,"ts":7}`),
			want: Reading{DeviceID: "pump-9", Kind: "pressure", EventTime: received.Add(-time.Hour), TimeSource: TimeFromPayload,
				Metrics: map[string]float64{"bar": 2.5, "ts": 7}},
		},
		{
			name: "'#' matches zero levels",
			opts: []Option{TopicTemplate("{device_id}/#")},
			msg:  msg("pump-9", `{"bar":2.5}`),
			want: Reading{DeviceID: "pump-9", EventTime: received, TimeSource: TimeFromReceived, Metrics: map[string]float64{"bar": 2.5}},
		},
		{
			name: "ts within the clock skew",
			msg:  msg("devices/s1/telemetry", `{"ts":"2024-05-02T11:59:59Z","t":1}`),
			want: Reading{DeviceID: "s1", EventTime: received.Add(24*time.Hour - time.Second), TimeSource: TimeFromPayload, Metrics: map[string]float64{"t": 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParser(t, tt.opts...)
			r, dl := p.Parse(tt.msg)
			require.Nil(t, dl)
			tt.want.Topic = tt.msg.Topic
			tt.want.ReceivedAt = received
			tt.want.PayloadHash = hash(tt.msg.Payload)
			assert.Equal(t, tt.want, r)
			assert.Equal(t, time.UTC, r.EventTime.Location())
		})
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name      string
		opts      []Option
		msg       mqttio.Message
		reason    string
		detailHas string
	}{
		{"not JSON", nil, msg("devices/s1/telemetry", `temperature=21.5`), ReasonNotJSON, "not JSON"},
		{"empty", nil, msg("devices/s1/telemetry", ""), ReasonNotJSON, "empty"},
		{"blank", nil, msg("devices/s1/telemetry", " \n"), ReasonNotJSON, "empty"},
		{"truncated", nil, msg("devices/s1/telemetry", `{"t":1`), ReasonNotJSON, "not JSON"},
		{"trailing data", nil, msg("devices/s1/telemetry", `{"t":1} x`), ReasonNotJSON, "after top-level value"},
		{"two objects", nil, msg("devices/s1/telemetry", `{"t":1}{"t":2}`), ReasonNotJSON, "after top-level value"},
		{"NaN literal", nil, msg("devices/s1/telemetry", `{"t":NaN}`), ReasonNotJSON, "invalid character"},
		{"array", nil, msg("devices/s1/telemetry", `[1,2]`), ReasonNotObject, "array"},
		{"number", nil, msg("devices/s1/telemetry", `21.5`), ReasonNotObject, "number"},
		{"string", nil, msg("devices/s1/telemetry", `"hi"`), ReasonNotObject, "string"},
		{"null", nil, msg("devices/s1/telemetry", `null`), ReasonNotObject, "null"},
		{"ts words", nil, msg("devices/s1/telemetry", `{"ts":"yesterday","t":1}`), ReasonBadTimestamp, `"yesterday"`},
		{"ts no zone", nil, msg("devices/s1/telemetry", `{"ts":"2024-05-01T12:00:00","t":1}`), ReasonBadTimestamp, "RFC 3339"},
		{"ts seconds", nil, msg("devices/s1/telemetry", `{"ts":1714564798,"t":1}`), ReasonBadTimestamp, "not seconds"},
		{"ts before 2000", nil, msg("devices/s1/telemetry", `{"ts":"1970-01-01T00:00:00Z","t":1}`), ReasonBadTimestamp, "1970"},
		{"ts too far ahead", nil, msg("devices/s1/telemetry", `{"ts":"2024-05-02T12:00:01Z","t":1}`), ReasonBadTimestamp, "MaxClockSkew"},
		{"ts float too far ahead", nil, msg("devices/s1/telemetry", `{"ts":9e15,"t":1}`), ReasonBadTimestamp, "9e15"},
		{"ts huge", nil, msg("devices/s1/telemetry", `{"ts":1e999,"t":1}`), ReasonBadTimestamp, "finite"},
		{"ts int overflow", nil, msg("devices/s1/telemetry", `{"ts":99999999999999999999999,"t":1}`), ReasonBadTimestamp, "outside"},
		{"ts bool", nil, msg("devices/s1/telemetry", `{"ts":true,"t":1}`), ReasonBadTimestamp, "boolean"},
		{"ts null", nil, msg("devices/s1/telemetry", `{"ts":null,"t":1}`), ReasonBadTimestamp, "null"},
		{"ts object", nil, msg("devices/s1/telemetry", `{"ts":{},"t":1}`), ReasonBadTimestamp, "object"},
		{"metric +Inf", nil, msg("devices/s1/telemetry", `{"t":1e999}`), ReasonNonFinite, `"t"`},
		{"metric -Inf", nil, msg("devices/s1/telemetry", `{"t":-1e400}`), ReasonNonFinite, "-1e400"},
		{"no metrics", nil, msg("devices/s1/telemetry", `{}`), ReasonNoMetrics, "no number"},
		{"only ts and strings", nil, msg("devices/s1/telemetry", `{"ts":"2024-05-01T12:00:00Z","t":"21.5"}`), ReasonNoMetrics, `"ts"`},
		{"only nested strings", nil, msg("devices/s1/telemetry", `{"c":{"t":"21.5"},"d":[]}`), ReasonNoMetrics, "no number"},
		{"too deep", nil, msg("devices/s1/telemetry", `{"t":1,"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}`), ReasonTooDeep, `"a.b.c.d.e.f.g.h" nests deeper than 8 levels`},
		{"too deep array", []Option{MaxDepth(2)}, msg("devices/s1/telemetry", `{"t":1,"a":[[1]]}`), ReasonTooDeep, `"a.0" nests deeper than 2`},
		{"deep but arrays ignored", []Option{MaxDepth(1), Arrays(ArraysIgnored)}, msg("devices/s1/telemetry", `{"t":1,"a":{"b":1}}`), ReasonTooDeep, `"a"`},
		{"huge array", nil, msg("devices/s1/telemetry", `{"wave":[`+strings.Repeat("1,", 5000)+`1]}`), ReasonTooManyMetrics, "more than 1000 metrics"},
		{"too many metrics", []Option{MaxMetrics(2)}, msg("devices/s1/telemetry", `{"a":1,"b":2,"c":3}`), ReasonTooManyMetrics, "option MaxMetrics"},
		{"very deep nesting", nil, msg("devices/s1/telemetry", `{"t":1,"a":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}`), ReasonTooDeep, `"a.0.0.0.0.0.0.0" nests`},
		{"empty device id", nil, msg("devices//telemetry", `{"t":1}`), ReasonNoDeviceID, "empty device id"},
		{"wrong literal", nil, msg("devices/s1/status", `{"t":1}`), ReasonNoDeviceID, "does not match"},
		{"too few levels", nil, msg("devices/s1", `{"t":1}`), ReasonNoDeviceID, "does not match"},
		{"empty topic", nil, msg("", `{"t":1}`), ReasonNoDeviceID, "does not match"},
		{"too many levels", []Option{TopicTemplate("devices/{device_id}/telemetry/{kind}")}, msg("devices/s1/telemetry/a/b", `{"t":1}`), ReasonNoDeviceID, "does not match"},
		{"no kind level", []Option{TopicTemplate("devices/{device_id}/telemetry/{kind}")}, msg("devices/s1/telemetry", `{"t":1}`), ReasonNoDeviceID, "does not match"},
		{"device '+'", nil, msg("devices/s+1/telemetry", `{"t":1}`), ReasonBadDeviceID, `"s+1"`},
		{"device '#'", nil, msg("devices/#/telemetry", `{"t":1}`), ReasonBadDeviceID, "'#'"},
		{"device NUL", nil, msg("devices/s\x001/telemetry", `{"t":1}`), ReasonBadDeviceID, "NUL"},
		{"topic not UTF-8", nil, msg("devices/s\xff/telemetry", `{"t":1}`), ReasonInvalidUTF8, "topic"},
		{"payload not UTF-8", nil, msg("devices/s1/telemetry", "{\"n\":\"caf\xe9\",\"t\":1}"), ReasonInvalidUTF8, "payload"},
		{"too large", []Option{MaxPayloadBytes(8)}, msg("devices/s1/telemetry", `{"t":12345}`), ReasonTooLarge, "11 bytes"},
		{"default size limit", nil, msg("devices/s1/telemetry", `{"t":1,"pad":"`+strings.Repeat("x", 64<<10)+`"}`), ReasonTooLarge, "65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParser(t, tt.opts...)
			r, dl := p.Parse(tt.msg)
			require.NotNil(t, dl, "parsed into %+v", r)
			assert.Equal(t, Reading{}, r)
			assert.Equal(t, tt.reason, dl.Reason)
			assert.Contains(t, dl.Detail, tt.detailHas)
			assert.Equal(t, tt.msg.Topic, dl.Topic)
			assert.Equal(t, tt.msg.Payload, dl.Payload)
			assert.Equal(t, received, dl.ReceivedAt)
			assert.Contains(t, Reasons, dl.Reason)
			assert.Less(t, len(dl.Detail), 600, dl.Detail)
		})
	}
}

func TestDetailQuotesLongValuesShort(t *testing.T) {
	p := mustParser(t)
	long := strings.Repeat("é", 1000)
	_, dl := p.Parse(msg("devices/s1/telemetry", `{"ts":"`+long+`","t":1}`))
	require.NotNil(t, dl)
	assert.Less(t, len(dl.Detail), 400)
	assert.Contains(t, dl.Detail, "(2000 bytes)")
}

func TestParseZeroReceivedAt(t *testing.T) {
	p := mustParser(t)
	m := msg("devices/s1/telemetry", `{"ts":2100000000000,"t":1}`)
	m.ReceivedAt = time.Time{}
	r, dl := p.Parse(m)
	require.Nil(t, dl)
	assert.Equal(t, time.UnixMilli(2100000000000).UTC(), r.EventTime)
	m.Payload = []byte(`{"ts":8000000000000,"t":1}`) // 2223: not a Beam-safe time
	_, dl = p.Parse(m)
	require.NotNil(t, dl)
	assert.Equal(t, ReasonBadTimestamp, dl.Reason)
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		opt  Option
		want string
	}{
		{TopicTemplate(""), "option TopicTemplate: must not be empty"},
		{TopicTemplate("devices/+/telemetry"), "option TopicTemplate"},
		{TopicTemplate("{device_id}/{device_id}"), "exactly once"},
		{TopicTemplate("{device_id}/#/x"), "'#' before its last level"},
		{TopicTemplate("{device_id}/{kind}/{kind}"), "{kind} more than once"},
		{TopicTemplate("dev{device_id}"), "must be a literal"},
		{TopicTemplate("{device_id}/{site}"), "must be a literal"},
		{TimestampField(""), "option TimestampField"},
		{MaxPayloadBytes(0), "option MaxPayloadBytes"},
		{EarliestEventTime(time.Time{}), "option EarliestEventTime"},
		{MaxClockSkew(-time.Second), "option MaxClockSkew"},
		{nil, "nil Option"},
	}
	for _, tt := range tests {
		_, err := NewParser(tt.opt)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
		assert.True(t, strings.HasPrefix(err.Error(), "telemetry: "), err.Error())
	}
}

func TestEarliestEventTimeAndSkewOptions(t *testing.T) {
	p := mustParser(t, EarliestEventTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)), MaxClockSkew(time.Minute))
	for payload, ok := range map[string]bool{
		`{"ts":"2023-12-31T23:59:59Z","t":1}`: false,
		`{"ts":"2024-01-01T00:00:00Z","t":1}`: true,
		`{"ts":"2024-05-01T12:01:00Z","t":1}`: true,
		`{"ts":"2024-05-01T12:01:01Z","t":1}`: false,
	} {
		_, dl := p.Parse(msg("devices/s1/telemetry", payload))
		assert.Equal(t, ok, dl == nil, payload)
	}
}

// sample is one line of testdata/telemetry/*.jsonl.
type sample struct {
	Topic         string   `json:"topic"`
	Payload       string   `json:"payload"`
	PayloadBase64 string   `json:"payload_base64"`
	Reason        string   `json:"reason"`
	DeviceID      string   `json:"device_id"`
	Devices       []string `json:"devices"`
	Kind          string   `json:"kind"`
	TimeSource    string   `json:"time_source"`
	Metrics       []string `json:"metrics"`
}

func readSamples(t testing.TB, name string) []sample {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "telemetry", name))
	require.NoError(t, err)
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s sample
		require.NoError(t, json.Unmarshal(sc.Bytes(), &s), sc.Text())
		if s.PayloadBase64 != "" {
			b, err := base64.StdEncoding.DecodeString(s.PayloadBase64)
			require.NoError(t, err)
			s.Payload = string(b)
		}
		out = append(out, s)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out)
	return out
}

// mixedRoutes are the routes of the device simulator's mixed profile,
// which the mixed-*.jsonl samples use.
var mixedRoutes = []Option{
	Route("gateways/{device_id}/telemetry", FormatBatch),
	Route("devices/{device_id}/values/{metric}", FormatValue),
}

// TestSampleFiles keeps testdata/telemetry/*.jsonl true.
func TestSampleFiles(t *testing.T) {
	for _, files := range []struct {
		good, malformed string
		opts            []Option
		reasons         []string
	}{
		{"good.jsonl", "malformed.jsonl", nil, []string{ReasonInvalidUTF8, ReasonNoDeviceID, ReasonBadDeviceID,
			ReasonNotJSON, ReasonNotObject, ReasonBadTimestamp, ReasonNonFinite, ReasonNoMetrics, ReasonTooDeep, ReasonTooManyMetrics}},
		{"mixed-good.jsonl", "mixed-malformed.jsonl", mixedRoutes, []string{ReasonNotBatch, ReasonNoMetrics, ReasonNotObject,
			ReasonBadDeviceID, ReasonBadTimestamp, ReasonNotJSON, ReasonNotNumber, ReasonNonFinite, ReasonNoMetricName}},
	} {
		p := mustParser(t, files.opts...)
		for _, s := range readSamples(t, files.good) {
			rs, ds := p.ParseAll(msg(s.Topic, s.Payload), nil, nil)
			if !assert.Empty(t, ds, "%s %s", s.Topic, s.Payload) || !assert.NotEmpty(t, rs) {
				continue
			}
			want := s.Devices
			if want == nil {
				want = []string{s.DeviceID}
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.DeviceID)
				assert.NotEmpty(t, r.Metrics, s.Payload)
			}
			assert.Equal(t, want, got, s.Payload)
			assert.Equal(t, s.Kind, rs[0].Kind, s.Payload)
			assert.Equal(t, s.TimeSource, rs[len(rs)-1].TimeSource, s.Payload)
			if s.Metrics != nil {
				assert.Equal(t, s.Metrics, slices.Sorted(maps.Keys(rs[0].Metrics)), s.Payload)
			}
		}
		seen := map[string]bool{}
		for _, s := range readSamples(t, files.malformed) {
			_, ds := p.ParseAll(msg(s.Topic, s.Payload), nil, nil)
			if assert.NotEmpty(t, ds, "%s %s", s.Topic, s.Payload) {
				assert.Equal(t, s.Reason, ds[0].Reason, "%s %s: %s", s.Topic, s.Payload, ds[0].Detail)
				seen[ds[0].Reason] = true
			}
		}
		for _, r := range files.reasons {
			assert.True(t, seen[r], "%s has no sample of %s", files.malformed, r)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []struct{ topic, payload string }{
		{"devices/s1/telemetry", `{"ts":"2024-05-01T11:59:58Z","temperature":21.5}`},
		{"devices/s1/telemetry/power", `{"ts":1714564798000.5,"v":230,"on":true}`},
		{"devices//telemetry", `[1e999]`},
		{"devices/s1/telemetry", `{"env":{"t":1,"a":[1,[2,{"b":"x"}]]},"env":{"u":null}}`},
	} {
		f.Add(s.topic, []byte(s.payload), received.UnixMilli())
	}
	p := mustParser(f)
	f.Fuzz(func(t *testing.T, topic string, payload []byte, recvMillis int64) {
		m := mqttio.Message{Topic: topic, Payload: payload}
		if recvMillis != 0 {
			m.ReceivedAt = time.UnixMilli(recvMillis)
		}
		r, dl := p.Parse(m)
		// The hand-written walker must read objects as encoding/json does.
		if utf8.Valid(payload) && json.Valid(payload) && firstType(payload) == "object" { // as Parse checks
			for _, lim := range []walkLimits{{DefaultMaxDepth, true}, {2, false}} {
				if got, want := flatten(payload, lim), referenceFlatten(payload, lim); !reflect.DeepEqual(got, want) {
					t.Fatalf("walker and encoding/json disagree on %q (%+v):\n%v\n%v", payload, lim, got, want)
				}
			}
		}
		checkOne(t, m, r, dl)
	})
}

// checkParsed checks what every reading and dead letter of m must be; a
// message must make one or the other.
func checkParsed(t *testing.T, m mqttio.Message, rs []Reading, ds []DeadLetter) {
	t.Helper()
	if len(rs)+len(ds) == 0 {
		t.Fatalf("%q on %q made neither readings nor dead letters", m.Payload, m.Topic)
	}
	for _, dl := range ds {
		if dl.Reason == "" || dl.Detail == "" || dl.Topic != m.Topic || !slices.Contains(Reasons, dl.Reason) ||
			(dl.Reason != ReasonSeqGap && !bytes.Contains(m.Payload, dl.Payload)) {
			t.Fatalf("bad dead letter %+v", dl)
		}
		if len(dl.Detail) > 2000 {
			t.Fatalf("dead letter detail of %d bytes", len(dl.Detail))
		}
	}
	for _, r := range rs {
		if r.DeviceID == "" || strings.ContainsAny(r.DeviceID, "+#\x00") || len(r.Metrics)+len(r.Attributes) == 0 {
			t.Fatalf("bad reading %+v", r)
		}
		for k, v := range r.Metrics {
			if math.IsInf(v, 0) || math.IsNaN(v) {
				t.Fatalf("metric %q = %v", k, v)
			}
		}
		if r.TimeSource == TimeFromPayload && (r.EventTime.Before(DefaultEarliestEventTime) || r.EventTime.After(latestEventTime)) {
			t.Fatalf("event time %v out of range", r.EventTime)
		}
	}
}

// checkOne is checkParsed of Parse's results.
func checkOne(t *testing.T, m mqttio.Message, r Reading, dl *DeadLetter) {
	t.Helper()
	if dl != nil {
		checkParsed(t, m, nil, []DeadLetter{*dl})
		return
	}
	checkParsed(t, m, []Reading{r}, nil)
}

func BenchmarkParse(b *testing.B) {
	p := mustParser(b)
	m := msg("devices/sensor-1/telemetry/climate", `{"ts":"2024-05-01T11:59:58.123Z","temperature":21.5,"humidity":40.2,"pressure":1013.25,"battery":3.71,"unit":"C","ok":true}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(m.Payload)))
	for b.Loop() {
		if _, dl := p.Parse(m); dl != nil {
			b.Fatal(dl.Detail)
		}
	}
}

// walkLimits are a walker's depth and array settings.
type walkLimits struct {
	maxDepth int
	arrays   bool
}

// flatten is what the walker reports of the object b, the last of
// duplicate names winning, and the name of the first value too deep.
func flatten(b []byte, lim walkLimits) map[string]string {
	out := map[string]string{}
	w := walker{maxDepth: lim.maxDepth, arrays: lim.arrays}
	w.visit = func(name string, kind int, s string, raw []byte) bool {
		out[name] = fmt.Sprintf("%d:%s%s", kind, s, raw)
		return true
	}
	w.walkObject(b)
	if w.deep != "" {
		out["(too deep)"] = w.deep
	}
	return out
}

// referenceFlatten is flatten done with encoding/json's tokenizer, as the
// oracle of FuzzParse.
func referenceFlatten(b []byte, lim walkLimits) map[string]string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	out := map[string]string{}
	var walk func(name string, depth int)
	set := func(name string, kind int, s, raw string) { out[name] = fmt.Sprintf("%d:%s%s", kind, s, raw) }
	join := func(prefix, name string) string { return prefix + "." + name } // nested: always a prefix
	// skip consumes the rest of a composite whose opening token was read.
	skip := func() {
		for depth := 1; depth > 0; {
			tok, err := dec.Token()
			if err != nil {
				panic(err)
			}
			if d, ok := tok.(json.Delim); ok {
				if d == '{' || d == '[' {
					depth++
				} else {
					depth--
				}
			}
		}
	}
	value := func(name string, depth int) {
		tok, err := dec.Token()
		if err != nil {
			panic(err) // Parse checked b is JSON
		}
		switch v := tok.(type) {
		case json.Delim:
			typ := map[json.Delim]string{'{': "object", '[': "array"}[v]
			set(name, valueOther, typ, "")
			if v == '[' && !lim.arrays {
				skip()
				return
			}
			if depth >= lim.maxDepth {
				if _, ok := out["(too deep)"]; !ok {
					out["(too deep)"] = name
				}
				skip()
				return
			}
			if v == '[' {
				for i := 0; dec.More(); i++ {
					walk(join(name, strconv.Itoa(i)), depth+1)
				}
			} else {
				for dec.More() {
					key, _ := dec.Token()
					walk(join(name, key.(string)), depth+1)
				}
			}
			_, _ = dec.Token() // the closing delimiter
		case json.Number:
			set(name, valueNumber, "", string(v))
		case string:
			set(name, valueString, v, "")
		case bool:
			set(name, valueBool, strconv.FormatBool(v), "")
		case nil:
			set(name, valueOther, "null", "")
		}
	}
	walk = value
	if _, err := dec.Token(); err != nil { // '{'
		panic(err)
	}
	for dec.More() {
		key, _ := dec.Token()
		walk(key.(string), 1)
	}
	return out
}

func TestWalkerMatchesEncodingJSON(t *testing.T) {
	for _, payload := range []string{
		`{}`, ` { } `, `{"t":1,"t":"x"}`, `{"t":"x","t":2}`, `{"t":1e999,"t":1}`, `{"t":1,"t":null,"u":2}`,
		`{"a\"b":1,"c\u0041":"\ud800x\n","d":{"e":"}]\"{"},"f":[["]"]],"g":-0.5e-3,"h":false,"i":[]}`,
		"{\"ts\":1714564798000,\t\"v\" : 1 ,\r\n\"w\":true}",
		`{"a":{"b":{"c":{"d":[1,[2,[3,{"e":4}]]]}}},"a":{"x":1}}`,
		`{"a\u002eb":{"c\n":1},"":{"":2}}`,
	} {
		for _, lim := range []walkLimits{{DefaultMaxDepth, true}, {3, true}, {2, false}, {1, true}} {
			assert.Equal(t, referenceFlatten([]byte(payload), lim), flatten([]byte(payload), lim), "%s %+v", payload, lim)
		}
	}
	r, dl := mustParser(t).Parse(msg("devices/s/telemetry", `{"t":"x","t":2,"u":1,"u":null,"t\u0073":"2024-05-01T11:00:00Z"}`))
	require.Nil(t, dl)
	assert.Equal(t, map[string]float64{"t": 2}, r.Metrics)
	assert.Nil(t, r.Attributes)
	assert.Equal(t, TimeFromPayload, r.TimeSource)
	_, dl = mustParser(t).Parse(msg("devices/s/telemetry", `{"t":1e999,"t":1}`))
	assert.Nil(t, dl, "the last of duplicate keys wins")
}

// MQTT 5 user properties become attributes; the payload's own attributes
// and the first of repeated property names win.
func TestParseUserPropertiesAreAttributes(t *testing.T) {
	m := msg("devices/s1/telemetry", `{"t":1,"unit":"C"}`)
	m.UserProperties = mqttio.UserProperties{{Name: "site", Value: "north"}, {Name: "unit", Value: "F"}, {Name: "site", Value: "south"}}
	r, dead := mustParser(t).Parse(m)
	require.Nil(t, dead)
	require.Equal(t, map[string]string{"unit": "C", "site": "north"}, r.Attributes)

	m = msg("devices/s1/telemetry", `{"t":1}`)
	m.UserProperties = mqttio.UserProperties{{Name: "fw", Value: "1.2"}}
	r, dead = mustParser(t).Parse(m)
	require.Nil(t, dead)
	require.Equal(t, map[string]string{"fw": "1.2"}, r.Attributes)
}

// The user properties of a message that makes several readings are
// attributes of each of them.
func TestParseAllUserPropertiesOnEveryReading(t *testing.T) {
	p := mustParser(t, PayloadFormat(FormatBatch), TopicTemplate("gateways/{device_id}/telemetry"))
	m := msg("gateways/gw-1/telemetry", `[{"device_id":"a","t":1},{"device_id":"b","t":2,"site":"east"}]`)
	m.UserProperties = mqttio.UserProperties{{Name: "site", Value: "north"}}
	rs, ds := p.ParseAll(m, nil, nil)
	require.Empty(t, ds)
	require.Len(t, rs, 2)
	assert.Equal(t, map[string]string{AttrGateway: "gw-1", "site": "north"}, rs[0].Attributes)
	assert.Equal(t, map[string]string{AttrGateway: "gw-1", "site": "east"}, rs[1].Attributes)
}
