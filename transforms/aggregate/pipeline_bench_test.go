package aggregate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
)

// BenchmarkParseAndAggregate is the per-message cost of the telemetry path
// outside the runner: parse an MQTT message, turn it into a sample, and
// compute the window's statistics once a minute of readings (one a second)
// is in.
func BenchmarkParseAndAggregate(b *testing.B) {
	const perWindow = 60
	parser, err := telemetry.NewParser()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	msgs := make([]mqttio.Message, perWindow)
	for i := range msgs {
		ts := start.Add(time.Duration(i) * time.Second)
		msgs[i] = mqttio.Message{
			Topic:      "devices/d1/telemetry/env",
			Payload:    fmt.Appendf(nil, `{"ts":%q,"temperature":%d.5,"humidity":%d,"battery":3.%d,"site":"berlin","ok":true}`, ts.Format(time.RFC3339Nano), 20+i%5, 40+i%9, i%10),
			QoS:        1,
			ReceivedAt: ts.Add(50 * time.Millisecond),
		}
	}
	ctx := context.Background()
	var window []sample
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r, dead := parser.Parse(msgs[i%perWindow])
		if dead != nil {
			b.Fatalf("dead letter: %s", dead.Detail)
		}
		if smp, ok := sampleOf(ctx, r); ok {
			window = append(window, smp)
		}
		if i%perWindow == perWindow-1 {
			_, _ = statsOf(window)
			window = window[:0]
		}
	}
}
