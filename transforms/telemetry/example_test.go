package telemetry_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// Parse a message with Parser.Parse, the pure core of the Parse transform.
// In a pipeline: readings, deadLetters := telemetry.Parse(s, msgs).
func ExampleParser_Parse() {
	p, err := telemetry.NewParser(telemetry.TopicTemplate("devices/{device_id}/telemetry/{kind}"))
	if err != nil {
		panic(err)
	}
	received := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

	r, _ := p.Parse(mqttio.Message{
		Topic:      "devices/sensor-1/telemetry/climate",
		Payload:    []byte(`{"ts":"2024-05-01T11:59:58Z","temperature":21.5,"unit":"C"}`),
		ReceivedAt: received,
	})
	fmt.Println(r.DeviceID, r.Kind, r.EventTime, r.TimeSource, r.Metrics, r.Attributes)

	_, dl := p.Parse(mqttio.Message{
		Topic:      "devices/sensor-1/telemetry/climate",
		Payload:    []byte(`{"ts":1714564798,"temperature":21.5}`),
		ReceivedAt: received,
	})
	fmt.Println(dl.Reason)
	fmt.Println(dl.Detail)
	// Output:
	// sensor-1 climate 2024-05-01 11:59:58 +0000 UTC payload map[temperature:21.5] map[unit:C]
	// bad_timestamp
	// timestamp field "ts" = 1714564798 is outside 2000-01-01T00:00:00Z .. 2024-05-02T12:00:00Z (before EarliestEventTime, or more than MaxClockSkew after the receive time; a number must be milliseconds, not seconds)
}

// Parse messages in a pipeline (here on prism, Beam Go's local runner): the
// readings and dead letters are two PCollections, and the Beam counters say
// how many of each there were.
func ExampleParse() {
	received := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	p, s := beam.NewPipelineWithRoot()
	msgs := beam.CreateList(s, []mqttio.Message{ // in a job: mqttio.Read(s, brokers, filters, ...)
		{Topic: "devices/sensor-1/telemetry", Payload: []byte(`{"ts":"2024-05-01T11:59:58Z","temperature":21.5}`), ReceivedAt: received},
		{Topic: "devices/sensor-2/telemetry", Payload: []byte(`{"temperature":19}`), ReceivedAt: received},
		{Topic: "devices/sensor-3/telemetry", Payload: []byte(`temperature=20`), ReceivedAt: received},
	})
	readings, deadLetters := telemetry.Parse(s, msgs, telemetry.TimestampField("ts"))
	_, _ = readings, deadLetters // e.g. aggregate the readings, write the dead letters to a table

	printCounters(p)
	// Output:
	// dead_letters_not_json=1 readings=2
}

// One broker, several kinds of payloads: routes pick the format by topic,
// first match first, then the TopicTemplate (JSON, nested objects
// flattened). ParseAll gives every reading of a message.
func ExampleRoute() {
	p, err := telemetry.NewParser(
		telemetry.Route("gateways/{device_id}/telemetry", telemetry.FormatBatch),
		telemetry.Route("devices/{device_id}/values/{metric}", telemetry.FormatValue),
		telemetry.Route("telegraf/{device_id}/#", telemetry.FormatInflux),
		telemetry.TopicTemplate("devices/{device_id}/telemetry/#"))
	if err != nil {
		panic(err)
	}
	received := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var readings []telemetry.Reading
	var dead []telemetry.DeadLetter
	for _, m := range []mqttio.Message{
		{Topic: "devices/sensor-1/telemetry", Payload: []byte(`{"ts":"2024-05-01T11:59:58Z","env":{"temperature":21.5}}`)},
		{Topic: "gateways/gw-1/telemetry", Payload: []byte(`[{"device_id":"ble-7","ts":1714564790000,"rssi":-70},{"device_id":"a/b","rssi":-80}]`)},
		{Topic: "devices/meter-1/values/power", Payload: []byte(`1234.5`)},
		{Topic: "telegraf/host-1/metrics", Payload: []byte("cpu,cpu=cpu-total usage_idle=97.5 1714564795000000000")},
	} {
		m.ReceivedAt = received
		readings, dead = p.ParseAll(m, readings, dead)
	}
	for _, r := range readings {
		fmt.Println(r.DeviceID, r.EventTime.Format(time.TimeOnly), r.Metrics, r.Attributes)
	}
	for _, d := range dead {
		fmt.Println(d.Reason, string(d.Payload))
	}
	// Output:
	// sensor-1 11:59:58 map[env.temperature:21.5] map[]
	// ble-7 11:59:50 map[rssi:-70] map[gateway_id:gw-1]
	// meter-1 12:00:00 map[power:1234.5] map[]
	// host-1 11:59:55 map[cpu.usage_idle:97.5] map[cpu:cpu-total]
	// bad_device_id {"device_id":"a/b","rssi":-80}
}

// Sparkplug B in a pipeline: the edge node's NBIRTH and DBIRTH define the
// metrics and their aliases, kept in Beam state per edge node; DDATA carry
// values by alias. A DDATA whose alias no BIRTH defined is a dead letter
// and, with RebirthRequests, asks the node to publish its BIRTHs again (an
// NCMD for mqttio.Write).
func ExampleParseWithCommands() {
	received := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := uint64(received.Add(-time.Second).UnixMilli())
	payload := func(seq uint64, metrics ...sparkplug.Metric) []byte {
		p := sparkplug.Payload{Timestamp: at, Seq: seq, HasSeq: true, Metrics: metrics}
		return p.Marshal()
	}
	msgs := []mqttio.Message{
		{Topic: "spBv1.0/plant-1/NBIRTH/edge-7", Payload: payload(0,
			sparkplug.Metric{Name: "bdSeq", DataType: sparkplug.Int64, Value: sparkplug.LongValue(1)})},
		{Topic: "spBv1.0/plant-1/DBIRTH/edge-7/pump-3", Payload: payload(1,
			sparkplug.Metric{Name: "temperature", Alias: 1, HasAlias: true, DataType: sparkplug.Double, Value: sparkplug.DoubleValue(20.5)})},
		{Topic: "spBv1.0/plant-1/DDATA/edge-7/pump-3", Payload: payload(2,
			sparkplug.Metric{Alias: 1, HasAlias: true, Value: sparkplug.DoubleValue(21.25)})},
		{Topic: "spBv1.0/plant-1/DDATA/edge-7/pump-3", Payload: payload(3,
			sparkplug.Metric{Alias: 9, HasAlias: true, Value: sparkplug.DoubleValue(1)})},
	}
	for i := range msgs {
		msgs[i].ReceivedAt = received
	}
	p, s := beam.NewPipelineWithRoot()
	readings, deadLetters, commands := telemetry.ParseWithCommands(s, beam.CreateList(s, msgs), // in a job: mqttio.Read
		telemetry.PayloadFormat(telemetry.FormatSparkplugB), telemetry.RebirthRequests(time.Minute))
	_, _, _ = readings, deadLetters, commands
	// In a job: mqttio.Write(s, brokers, commands, mqttio.TopicTemplate(sparkplug.NCMDTemplate))

	printCounters(p)
	// Output:
	// dead_letters_unknown_alias=1 readings=3 sparkplug_rebirth_requests=1
}

// The topic filters to subscribe to for a route's template.
func ExampleFilter() {
	for _, r := range [][2]string{
		{"devices/{device_id}/values/{metric}", telemetry.FormatValue},
		{"spBv1.0/plant-1/#", telemetry.FormatSparkplugB},
	} {
		filters, err := telemetry.Filter(r[0], r[1])
		if err != nil {
			panic(err)
		}
		fmt.Println(filters)
	}
	// Output:
	// [devices/+/values/+]
	// [spBv1.0/plant-1/NBIRTH/+ spBv1.0/plant-1/NDATA/+ spBv1.0/plant-1/NDEATH/+ spBv1.0/plant-1/DBIRTH/+/+ spBv1.0/plant-1/DDATA/+/+ spBv1.0/plant-1/DDEATH/+/+]
}

// printCounters runs p on prism and prints its "telemetry" counters.
func printCounters(p *beam.Pipeline) {
	res, err := beam.Run(context.Background(), "prism", p)
	if err != nil {
		panic(err)
	}
	var lines []string
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "telemetry" {
			lines = append(lines, fmt.Sprintf("%s=%d", c.Name(), c.Result()))
		}
	}
	sort.Strings(lines)
	fmt.Println(strings.Join(lines, " "))
}
