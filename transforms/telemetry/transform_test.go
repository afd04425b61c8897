package telemetry

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/mqttbeam/mqttbeam/mqttio"
	sp "github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
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
	assert.Equal(t, map[string]int64{
		"readings":                  3,
		"dead_letters_not_json":     1,
		"dead_letters_no_device_id": 1,
		"dead_letters_non_finite":   1,
	}, runCounters(t, p))
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

func init() {
	register.Function1x2(decodeMessage)
	register.Function1x1(publicationLine)
}

// decodeMessage is a TestStream element (a JSON mqttio.Message) as a
// message.
func decodeMessage(s string) (mqttio.Message, error) {
	var m mqttio.Message
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

func publicationLine(p mqttio.Publication) string {
	var pl sp.Payload
	if err := sp.Decode(p.Payload, &pl); err != nil || len(pl.Metrics) != 1 {
		return "bad payload"
	}
	return fmt.Sprintf("%s|%v|%s", p.Topic, p.Fields, pl.Metrics[0].Name)
}

// One pipeline on prism reads every format through routes; the Sparkplug
// B births come in an earlier bundle than the data, so the aliases must
// hold in Beam state across bundles. A DDATA with an unknown alias makes a
// rebirth request, a second one within the cooldown does not.
func TestParsePipelineFormats(t *testing.T) {
	cfg := teststream.NewConfig()
	add := func(msgs ...mqttio.Message) {
		for _, m := range msgs {
			b, err := json.Marshal(m)
			require.NoError(t, err)
			require.NoError(t, cfg.AddElements(m.ReceivedAt.UnixMilli(), string(b)))
		}
	}
	watermark := func(d time.Duration) { require.NoError(t, cfg.AdvanceWatermark(received.Add(d).UnixMilli())) }
	e := newEdgeNode()
	add(nbirth(e), dbirth(e, "pump-1"))
	watermark(time.Second)
	later := func(m mqttio.Message, d time.Duration) mqttio.Message { m.ReceivedAt = m.ReceivedAt.Add(d); return m }
	add(later(e.msg(sp.DDATA, "pump-1", byAlias(10, sp.DoubleValue(22.5))), 2*time.Second),
		later(e.msg(sp.NDATA, "", byAlias(2, sp.LongValue(101))), 2*time.Second),
		later(msg("devices/d1/telemetry", `{"ts":"2024-05-01T11:59:59Z","env":{"t":21.5}}`), 2*time.Second),
		later(msg("gateways/gw-1/telemetry", `[{"device_id":"ble-1","ts":"2024-05-01T11:59:58Z","t":20},{"device_id":"a/b","t":1}]`), 2*time.Second),
		later(msg("devices/meter-1/values/power", `1200`), 2*time.Second),
		later(msg("spBv1.0/plant-1/NCMD/edge-7", string(sp.RebirthRequest(received))), 2*time.Second))
	watermark(3 * time.Second)
	unknown1 := later(e.msg(sp.DDATA, "pump-1", byAlias(77, sp.DoubleValue(1))), 4*time.Second)
	unknown2 := later(e.msg(sp.DDATA, "pump-1", byAlias(78, sp.DoubleValue(1))), 5*time.Second)
	add(unknown1, unknown2)
	require.NoError(t, cfg.AdvanceWatermarkToInfinity())

	p, s := beam.NewPipelineWithRoot()
	msgs := beam.ParDo(s, decodeMessage, teststream.Create(s, cfg))
	readings, dead, commands := ParseWithCommands(s, msgs, append(mixedRoutes,
		Route("spBv1.0/#", FormatSparkplugB), RebirthRequests(time.Minute))...)
	at := func(d time.Duration) string { return received.Add(d).Format(time.RFC3339Nano) }
	passert.Equals(s, beam.ParDo(s, readingLine, readings),
		"plant-1/edge-7|NBIRTH|"+at(-time.Second)+"|payload|map[online:1 uptime:100]|map[Properties/Version:1.2]|at="+at(-time.Second),
		"plant-1/edge-7/pump-1|DBIRTH|"+at(-time.Second)+"|payload|map[count:4.294967295e+09 level:0.5 offset:-5 online:1 running:1 temperature:20.5]|map[gateway_id:plant-1/edge-7 mode:auto serviced:"+at(-24*time.Hour)+"]|at="+at(-time.Second),
		"plant-1/edge-7/pump-1|DDATA|"+at(-time.Second)+"|payload|map[temperature:22.5]|map[gateway_id:plant-1/edge-7]|at="+at(-time.Second),
		"plant-1/edge-7|NDATA|"+at(-time.Second)+"|payload|map[uptime:101]|map[]|at="+at(-time.Second),
		"d1||"+at(-time.Second)+"|payload|map[env.t:21.5]|map[]|at="+at(-time.Second),
		"ble-1||"+at(-2*time.Second)+"|payload|map[t:20]|map[gateway_id:gw-1]|at="+at(-2*time.Second),
		"meter-1||"+at(2*time.Second)+"|received|map[power:1200]|map[]|at="+at(2*time.Second),
	)
	passert.Equals(s, beam.ParDo(s, deadLetterLine, dead),
		`bad_device_id|gateways/gw-1/telemetry|{"device_id":"a/b","t":1}|`+at(2*time.Second)+`|detail=true|at=`+at(2*time.Second),
		"unknown_alias|spBv1.0/plant-1/DDATA/edge-7/pump-1|"+string(unknown1.Payload)+"|"+at(4*time.Second)+"|detail=true|at="+at(4*time.Second),
		"unknown_alias|spBv1.0/plant-1/DDATA/edge-7/pump-1|"+string(unknown2.Payload)+"|"+at(5*time.Second)+"|detail=true|at="+at(5*time.Second),
	)
	passert.Equals(s, beam.ParDo(s, publicationLine, commands),
		"spBv1.0/plant-1/NCMD/edge-7|map[device_id:plant-1/edge-7 edge_node_id:edge-7 group_id:plant-1 rule:sparkplug_rebirth]|"+sp.RebirthMetric)
	assert.Equal(t, map[string]int64{
		"readings":                   7,
		"dead_letters_bad_device_id": 1,
		"dead_letters_unknown_alias": 2,
		"sparkplug_ignored":          1,
		"sparkplug_rebirth_requests": 1,
	}, runCounters(t, p))
}

// runCounters runs p on prism and returns its "telemetry" counters.
func runCounters(t *testing.T, p *beam.Pipeline) map[string]int64 {
	t.Helper()
	res, err := ptest.RunWithMetrics(p)
	require.NoError(t, err)
	got := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "telemetry" {
			got[c.Name()] += c.Result()
		}
	}
	return got
}
