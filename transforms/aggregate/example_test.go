package aggregate_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
)

// withEventTime stamps a reading with its event time, as telemetry.Parse
// does.
func withEventTime(r telemetry.Reading) (beam.EventTime, telemetry.Reading) {
	return mtime.FromTime(r.EventTime), r
}

func printAggregate(a aggregate.Aggregate) {
	fmt.Printf("%s %s [%s, %s) %s #%d: count %d min %g max %g mean %g first %g last %g\n",
		a.DeviceID, a.Metric, a.WindowStart.Format("15:04"), a.WindowEnd.Format("15:04"),
		a.Pane, a.PaneIndex, a.Count, a.Min, a.Max, a.Mean, a.First, a.Last)
}

func init() {
	register.Function1x2(withEventTime)
	register.Function1x0(printAggregate)
}

// Aggregate the temperature of a device per minute. The redelivered copy
// of the first reading counts once.
func ExamplePerWindow() {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	r := func(at time.Duration, temp float64, hash uint64) telemetry.Reading {
		return telemetry.Reading{DeviceID: "d1", EventTime: t0.Add(at), PayloadHash: hash,
			Metrics: map[string]float64{"temperature": temp}}
	}
	p, s := beam.NewPipelineWithRoot()
	readings := beam.ParDo(s, withEventTime, beam.Create(s,
		r(10*time.Second, 21.5, 1), r(10*time.Second, 21.5, 1), r(40*time.Second, 22.5, 2), r(70*time.Second, 23, 3)))
	rows := aggregate.PerWindow(s, readings, aggregate.Fixed(time.Minute))
	beam.ParDo0(s, printAggregate, rows)
	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		log.Fatal(err)
	}
	// Unordered output:
	// d1 temperature [12:00, 12:01) on_time #0: count 2 min 21.5 max 22.5 mean 22 first 21.5 last 22.5
	// d1 temperature [12:01, 12:02) on_time #0: count 1 min 23 max 23 mean 23 first 23 last 23
}
