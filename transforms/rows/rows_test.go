package rows

import (
	"encoding/json"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
	"github.com/mqttbeam/mqttbeam/transforms/rules"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
)

// Every table has a schema whose partitioning column is a TIMESTAMP and
// whose clustering columns exist, and whose BigQuery and JSON names agree.
func TestTables(t *testing.T) {
	names := map[string]bool{}
	for _, tb := range Tables() {
		t.Run(tb.Name, func(t *testing.T) {
			require.False(t, names[tb.Name], "duplicate table")
			names[tb.Name] = true
			s, err := tb.Schema()
			require.NoError(t, err)
			cols := map[string]*bigquery.FieldSchema{}
			for _, f := range s {
				cols[f.Name] = f
			}
			require.Contains(t, cols, tb.PartitionBy)
			assert.Equal(t, bigquery.TimestampFieldType, cols[tb.PartitionBy].Type)
			assert.True(t, cols[tb.PartitionBy].Required)
			for _, c := range tb.ClusterBy {
				assert.Contains(t, cols, c)
			}
			for i := range tb.Row.NumField() {
				f := tb.Row.Field(i)
				bq, js := f.Tag.Get("bigquery"), f.Tag.Get("json")
				assert.Regexp(t, "^"+bq+"(,omitempty)?$", js, "field %s", f.Name)
			}
		})
	}
	assert.Len(t, names, 4)
}

func TestFromAggregate(t *testing.T) {
	end := time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)
	a := aggregate.Aggregate{DeviceID: "d1", Metric: "t", WindowStart: end.Add(-5 * time.Minute), WindowEnd: end,
		Count: 2, Min: 1, Max: 3, Sum: 4, Mean: 2, First: 1, Last: 3, Pane: aggregate.PaneLate, PaneIndex: 1}
	r := FromAggregate(a, map[string]string{"site": "berlin", "model": "x1", "floor": "2"}, true)
	assert.Equal(t, "berlin", r.Site)
	assert.Equal(t, "x1", r.Model)
	assert.Empty(t, r.Owner)
	assert.Equal(t, []Attribute{{"floor", "2"}, {"model", "x1"}, {"site", "berlin"}}, r.Device)
	assert.Equal(t, int64(1), r.PaneIndex)
	assert.True(t, r.KnownDevice)

	unknown := FromAggregate(a, nil, false)
	assert.False(t, unknown.KnownDevice)
	assert.Nil(t, unknown.Device)
}

func TestFromReadingSortsMetrics(t *testing.T) {
	r := FromReading(telemetry.Reading{DeviceID: "d1", Metrics: map[string]float64{"z": 1, "a": 2}, Attributes: map[string]string{"unit": "C"}})
	assert.Equal(t, []Metric{{"a", 2}, {"z", 1}}, r.Metrics)
	assert.Equal(t, []Attribute{{"unit", "C"}}, r.Attributes)
}

func TestCommandRows(t *testing.T) {
	at := mtime.FromTime(time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC))
	payload, err := json.Marshal(rules.Payload{Rule: "overheat", DeviceID: "pump-1"})
	require.NoError(t, err)
	p := mqttio.Publication{Topic: "devices/pump-1/commands", Payload: payload}

	issued := FromPublication(at, p)
	assert.Equal(t, Command{IssuedAt: at.ToTime().UTC(), DeviceID: "pump-1", Rule: "overheat",
		Topic: p.Topic, Payload: string(payload), Status: CommandIssued}, issued)

	failed := FromPublishError(at, mqttio.PublishError{Publication: p, Reason: "unsafe topic"})
	assert.Equal(t, CommandFailed, failed.Status)
	assert.Equal(t, "unsafe topic", failed.Reason)

	rejected := FromRejected(at, rules.Rejected{DeviceID: "a/b", Rule: "overheat", Reason: "unsafe device id"})
	assert.Equal(t, Command{IssuedAt: at.ToTime().UTC(), DeviceID: "a/b", Rule: "overheat",
		Status: CommandRejected, Reason: "unsafe device id"}, rejected)

	// A payload that is not a rules.Payload keeps the device from the topic fields.
	other := FromPublication(at, mqttio.Publication{Fields: map[string]string{"device_id": "d9"}, Payload: []byte("reboot")})
	assert.Equal(t, "d9", other.DeviceID)

	// A Sparkplug B rebirth request: protobuf, named by its fields; the
	// payload column, a BigQuery STRING, must be UTF-8.
	ncmd := FromPublication(at, mqttio.Publication{Topic: "spBv1.0/g/NCMD/e",
		Fields: map[string]string{"device_id": "g/e", "rule": telemetry.RebirthRule}, Payload: []byte{0x08, 0xff, 0x01}})
	assert.Equal(t, Command{IssuedAt: at.ToTime().UTC(), DeviceID: "g/e", Rule: "sparkplug_rebirth", Topic: "spBv1.0/g/NCMD/e",
		Payload: "base64:CP8B", Status: CommandIssued}, ncmd)
}

func TestFromParseFailure(t *testing.T) {
	d := telemetry.DeadLetter{Topic: "devices/x/telemetry", Payload: []byte("nope"), Reason: telemetry.ReasonNoDeviceID, Detail: "why"}
	assert.Equal(t, DeadLetter{Stage: StageParse, Topic: d.Topic, Payload: d.Payload, Reason: d.Reason, Detail: "why"}, FromParseFailure(d))
}

func TestFromTooLate(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d, err := FromTooLate(telemetry.Reading{DeviceID: "d1", Topic: "devices/d1/telemetry", EventTime: at, ReceivedAt: at.Add(time.Hour),
		Metrics: map[string]float64{"t": 1}})
	require.NoError(t, err)
	assert.Equal(t, ReasonTooLate, d.Reason)
	assert.Equal(t, StageAggregate, d.Stage)
	assert.Contains(t, d.Detail, "2026-03-01T12:00:00Z")
	var r Reading
	require.NoError(t, json.Unmarshal(d.Payload, &r))
	assert.Equal(t, "d1", r.DeviceID)
	assert.Equal(t, []Metric{{"t", 1}}, r.Metrics)
}
