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
	// Output:
	// dead_letters_not_json=1 readings=2
}
