package telemetry

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mqttbeam/mqttbeam/mqttio"
	sp "github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// BenchmarkDecoders is each decoder's cost per message and per metric,
// through Parser.ParseAll (what the Parse transform runs per message),
// next to the flat JSON object of BenchmarkParse: ns/op and allocs/op per
// message, ns/metric the time per metric, and cpu-ns/op the process's CPU
// time per message, which a machine shared with other work disturbs less
// than the wall time (see README, "Payload formats").
func BenchmarkDecoders(b *testing.B) {
	const flat = `{"ts":"2024-05-01T11:59:58.123Z","temperature":21.5,"humidity":40.2,"pressure":1013.25,"battery":3.71,"unit":"C","ok":true}`
	const nested = `{"ts":"2024-05-01T11:59:58.123Z","env":{"temperature":21.5,"humidity":40.2},"power":{"pressure":1013.25,"battery":3.71},"unit":"C","ok":true}`
	var elems []string
	for i := range 10 {
		elems = append(elems, fmt.Sprintf(`{"device_id":"ble-%d","ts":1714564798%03d,"temperature":21.%d,"humidity":40,"pressure":1013.25,"battery":3.71}`, i, i, i))
	}
	one := func(name string, opts []Option, topic, payload string, metrics int) decoderBench {
		return decoderBench{name, func(b *testing.B) (*Parser, []mqttio.Message) {
			return mustParser(b, opts...), []mqttio.Message{msg(topic, payload)}
		}, metrics}
	}
	benches := []decoderBench{
		one("json", nil, "devices/sensor-1/telemetry/climate", flat, 4),
		one("json_nested", nil, "devices/sensor-1/telemetry/climate", nested, 4),
		one("batch_10", []Option{PayloadFormat(FormatBatch)}, "devices/gw-1/telemetry", "["+strings.Join(elems, ",")+"]", 40),
		one("value", []Option{PayloadFormat(FormatValue), TopicTemplate("devices/{device_id}/values/{metric}")}, "devices/meter-1/values/power", "1234.5", 1),
		one("influx", []Option{PayloadFormat(FormatInflux)}, "devices/sensor-1/telemetry/climate",
			"climate,unit=C temperature=21.5,humidity=40.2,pressure=1013.25,battery=3.71,ok=true 1714564798123000000", 4),
	}
	for _, n := range []int{4, 16} {
		benches = append(benches, sparkplugBench(n))
	}
	for _, bc := range benches {
		b.Run(bc.name, func(b *testing.B) {
			parser, msgs := bc.setup(b) // each run its own: Sparkplug B state counts seqs
			var rs []Reading
			var ds []DeadLetter
			b.ReportAllocs()
			b.SetBytes(int64(len(msgs[0].Payload)))
			start := cpuNanos()
			i := 0
			for b.Loop() {
				if rs, ds = parser.ParseAll(msgs[i%len(msgs)], rs[:0], ds[:0]); len(ds) > 0 {
					b.Fatal(ds[0].Detail)
				}
				i++
			}
			cpu := float64(cpuNanos()-start) / float64(b.N)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bc.metrics), "ns/metric")
			b.ReportMetric(cpu, "cpu-ns/op")
			b.ReportMetric(cpu/float64(bc.metrics), "cpu-ns/metric")
		})
	}
}

// sparkplugBench is a DDATA of n Double metrics by alias, after their
// births: 256 messages with consecutive seqs, so that no gap is reported.
func sparkplugBench(n int) decoderBench {
	setup := func(b *testing.B) (*Parser, []mqttio.Message) {
		p := sparkplugParser(b)
		e := newEdgeNode()
		defs := make([]sp.Metric, n)
		data := make([]sp.Metric, n)
		for i := range n {
			defs[i] = metric(fmt.Sprintf("metric-%02d", i), uint64(i+1), sp.Double, sp.DoubleValue(0))
			data[i] = byAlias(uint64(i+1), sp.DoubleValue(float64(i)+0.5))
		}
		if _, ds := parseAll(p, nbirth(e), e.msg(sp.DBIRTH, "pump-1", defs...)); len(ds) > 0 {
			b.Fatal(ds[0].Detail)
		}
		msgs := make([]mqttio.Message, 256)
		for i := range msgs {
			msgs[i] = e.msg(sp.DDATA, "pump-1", data...)
		}
		return p, msgs
	}
	return decoderBench{fmt.Sprintf("sparkplug_ddata_%d", n), setup, n}
}

// decoderBench is one case of BenchmarkDecoders.
type decoderBench struct {
	name string
	// setup makes the parser and the messages it parses in turn.
	setup   func(*testing.B) (*Parser, []mqttio.Message)
	metrics int // per message
}
