package rules_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
	"github.com/mqttbeam/mqttbeam/transforms/rules"
)

func init() {
	register.Function1x0(printCommand)
	register.Function1x0(printRejected)
}

func printCommand(p mqttio.Publication) {
	fmt.Printf("%s %s\n", p.Topic, p.Payload)
}

func printRejected(r rules.Rejected) {
	fmt.Printf("rejected %q (rule %s): %s\n", r.DeviceID, r.Rule, r.Reason)
}

// Evaluate turns the aggregates that break a rule into commands for
// mqttio.Write. The second device id would inject a topic level, so its
// command goes to the rejected output instead.
func ExampleEvaluate() {
	rs, err := rules.Load("../../testdata/rules/rules.json")
	if err != nil {
		log.Fatal(err)
	}
	end := time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)
	hot := aggregate.Aggregate{
		DeviceID: "pump-1", Metric: "temperature", WindowStart: end.Add(-5 * time.Minute), WindowEnd: end,
		Count: 10, Min: 70, Max: 85.5, Sum: 780, Mean: 78, Pane: aggregate.PaneOnTime,
	}
	unsafe := hot
	unsafe.DeviceID = "pump/2"

	p, s := beam.NewPipelineWithRoot()
	commands, rejected := rules.Evaluate(s, beam.CreateList(s, []aggregate.Aggregate{hot, unsafe}), rs)
	beam.ParDo0(s, printCommand, commands)
	beam.ParDo0(s, printRejected, rejected)
	// In a pipeline: mqttio.Write(s, brokers, commands).
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}
	// Unordered output:
	// devices/pump-1/commands {"rule":"overheat","device_id":"pump-1","metric":"temperature","stat":"max","op":">","value":85.5,"threshold":80,"window_start":"2026-03-01T12:00:00Z","window_end":"2026-03-01T12:05:00Z","pane":"on_time","command":{"action":"shutdown","reason":"overheat"}}
	// rejected "pump/2" (rule overheat): unsafe device id: "pump/2" contains '/', '+' or '#'
}

// Load reads rules from a JSON or YAML file.
func ExampleLoad() {
	rs, err := rules.Load("../../testdata/rules/rules.yaml")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rs {
		fmt.Printf("%s: %s of %s %s %v, cooldown %v, scope %v\n", r.Name, r.Stat, r.Metric, r.Op, r.Value, r.Cooldown, r.Scope)
	}
	// Output:
	// overheat: max of temperature > 80, cooldown 15m0s, scope map[]
	// low-pressure-berlin: mean of pressure < 1.2, cooldown 5m0s, scope map[model:x1 site:berlin]
	// few-heartbeats: count of heartbeat < 3, cooldown 0s, scope map[]
}
