package rows

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/transforms/jsonl"
)

// The rows that jsonl.Write encodes without reflection.
var _, _ jsonl.Appender = Aggregate{}, Reading{}

// sameAsEncodingJSON checks that row's AppendJSON writes what json.Marshal
// writes, after a prefix it must keep.
func sameAsEncodingJSON(t *testing.T, row jsonl.Appender) {
	t.Helper()
	want, err := json.Marshal(row)
	require.NoError(t, err)
	got, err := row.AppendJSON([]byte("prefix"))
	require.NoError(t, err)
	require.Equal(t, "prefix"+string(want), string(got))
}

// requireAllSet fails when a field of row is zero, so that a field added to
// a row type must be added to the full rows below, and so to AppendJSON's
// test.
func requireAllSet(t *testing.T, row any) {
	t.Helper()
	v := reflect.ValueOf(row)
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsZero(), "%s.%s is not set in the test row", v.Type().Name(), v.Type().Field(i).Name)
	}
}

func TestAggregateAppendJSON(t *testing.T) {
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	full := Aggregate{DeviceID: "d-1", Metric: "temperature", WindowStart: start, WindowEnd: start.Add(time.Minute),
		Count: 3, Min: -1.5, Max: 1e22, Sum: 2e-9, Mean: 1.0 / 3, First: 21.5, Last: 0,
		FirstTime: start.Add(123456789), LastTime: start.Add(59 * time.Second),
		Pane: "late", PaneIndex: 2, KnownDevice: true, Site: "berlin <b>", Model: "m\"1", Owner: "Grüße",
		Device: []Attribute{{"site", "berlin"}, {"firmware", "1.2\n"}}}
	full.Last = 0.25
	requireAllSet(t, full)
	sameAsEncodingJSON(t, full)
	sameAsEncodingJSON(t, Aggregate{})
	sameAsEncodingJSON(t, Aggregate{Last: math.Copysign(0, -1)})
	sameAsEncodingJSON(t, Aggregate{DeviceID: "d-2", Device: []Attribute{}})

	_, err := Aggregate{Mean: math.NaN()}.AppendJSON(nil)
	require.Error(t, err)
	_, err = Aggregate{WindowEnd: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}.AppendJSON(nil)
	require.Error(t, err)
}

func TestReadingAppendJSON(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 500, time.UTC)
	full := Reading{DeviceID: "d-1", Kind: "env", Topic: "devices/d-1/telemetry/env", EventTime: at, ReceivedAt: at.Add(time.Millisecond),
		TimeSource: "payload", Metrics: []Metric{{"temperature", 21.5}, {"tiny", 1e-9}}, Attributes: []Attribute{{"site", "a&b"}}}
	requireAllSet(t, full)
	sameAsEncodingJSON(t, full)
	sameAsEncodingJSON(t, Reading{})
	sameAsEncodingJSON(t, Reading{Metrics: []Metric{}, Attributes: []Attribute{}})

	_, err := Reading{Metrics: []Metric{{"x", math.Inf(1)}}}.AppendJSON(nil)
	require.Error(t, err)
}

// BenchmarkAppendJSON compares the hand-written encoder of an aggregates
// row with encoding/json's.
func BenchmarkAppendJSON(b *testing.B) {
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	row := Aggregate{DeviceID: "d-000042", Metric: "temperature", WindowStart: start, WindowEnd: start.Add(10 * time.Second),
		Count: 13, Min: 20.5, Max: 24.5, Sum: 290.5, Mean: 22.346153846153847, First: 20.5, Last: 24.5,
		FirstTime: start.Add(12345678), LastTime: start.Add(9876543210), Pane: "on_time"}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf, _ = row.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(row)
		}
	})
}
