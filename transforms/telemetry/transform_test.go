package telemetry

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function2x1(readingLine)
	register.Function2x1(deadLetterLine)
}

// readingLine describes a Reading and its element timestamp, for passert
// (which needs registered top-level functions on prism).
func readingLine(et beam.EventTime, r Reading) string {
	return fmt.Sprintf("%s|%s|%s|%s|%v|%v|at=%s", r.DeviceID, r.Kind, r.EventTime.Format(time.RFC3339Nano), r.TimeSource,
		r.Metrics, r.Attributes, et.ToTime().UTC().Format(time.RFC3339Nano))
}

func deadLetterLine(et beam.EventTime, d DeadLetter) string {
	return fmt.Sprintf("%s|%s|%s|%s|detail=%t|at=%s", d.Reason, d.Topic, d.Payload, d.ReceivedAt.Format(time.RFC3339Nano),
		d.Detail != "", et.ToTime().UTC().Format(time.RFC3339Nano))
}

func TestParsePipeline(t *testing.T) {
	msgs := []mqttio.Message{
		msg("devices/s1/telemetry/climate", `{"ts":"2024-05-01T11:59:58.5Z","temperature":21.5,"unit":"C"}`),
		msg("devices/s2/telemetry", `{"ts":1714564790000,"v":230}`),
		msg("devices/s3/telemetry", `{"battery":3.7}`),
		msg("devices/s1/telemetry", `not json`),
		msg("devices/s1/status", `{"t":1}`),
		msg("devices/s1/telemetry", `{"t":1e999}`),
	}
	p, s := beam.NewPipelineWithRoot()
	readings, dead := Parse(s, beam.CreateList(s, msgs))
	passert.Equals(s, beam.ParDo(s, readingLine, readings),
		"s1|climate|2024-05-01T11:59:58.5Z|payload|map[temperature:21.5]|map[unit:C]|at=2024-05-01T11:59:58.5Z",
		"s2||2024-05-01T11:59:50Z|payload|map[v:230]|map[]|at=2024-05-01T11:59:50Z",
		"s3||2024-05-01T12:00:00Z|received|map[battery:3.7]|map[]|at=2024-05-01T12:00:00Z",
	)
	passert.Equals(s, beam.ParDo(s, deadLetterLine, dead),
		"not_json|devices/s1/telemetry|not json|2024-05-01T12:00:00Z|detail=true|at=2024-05-01T12:00:00Z",
		"no_device_id|devices/s1/status|{\"t\":1}|2024-05-01T12:00:00Z|detail=true|at=2024-05-01T12:00:00Z",
		"non_finite|devices/s1/telemetry|{\"t\":1e999}|2024-05-01T12:00:00Z|detail=true|at=2024-05-01T12:00:00Z",
	)
	res, err := ptest.RunWithMetrics(p)
	require.NoError(t, err)
	got := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "telemetry" {
			got[c.Name()] += c.Result()
		}
	}
	assert.Equal(t, map[string]int64{
		"readings":                  3,
		"dead_letters_not_json":     1,
		"dead_letters_no_device_id": 1,
		"dead_letters_non_finite":   1,
	}, got)
}

func TestTryParseErrors(t *testing.T) {
	_, s := beam.NewPipelineWithRoot()
	_, _, err := TryParse(s, beam.Create(s, "x"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "PCollection<mqttio.Message>")
	_, _, err = TryParse(s, beam.CreateList(s, []mqttio.Message{msg("a", "b")}), MaxPayloadBytes(-1))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "telemetry.Parse: option MaxPayloadBytes"), err.Error())
	assert.Panics(t, func() { Parse(s, beam.Create(s, 1)) })
}
