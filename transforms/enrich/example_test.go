package enrich_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
	"github.com/mqttbeam/mqttbeam/transforms/enrich"
)

// stamp gives an aggregate the timestamp aggregate.PerWindow gives it: the
// last instant of its window.
func stamp(a aggregate.Aggregate) (beam.EventTime, aggregate.Aggregate) {
	return mtime.FromTime(a.WindowEnd).Subtract(1), a
}

func printEnriched(e enrich.Enriched) {
	site := "(unknown device)"
	if e.Known {
		site = e.Device["site"]
	}
	fmt.Printf("%s %s mean %g: site %s, attributes %v\n", e.Aggregate.DeviceID, e.Aggregate.Metric,
		e.Aggregate.Mean, site, slices.Sorted(maps.Keys(e.Device)))
}

func init() {
	register.Function1x2(stamp)
	register.Function1x0(printEnriched)
}

// Enrich per-minute aggregates with the device registry in a CSV file. In
// a streaming job, add enrich.Refresh(5*time.Minute) to reload it.
func ExampleJoin() {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	minute := func(device string, mean float64) aggregate.Aggregate {
		return aggregate.Aggregate{DeviceID: device, Metric: "temperature", Mean: mean,
			WindowStart: t0, WindowEnd: t0.Add(time.Minute)}
	}
	p, s := beam.NewPipelineWithRoot()
	aggs := beam.WindowInto(s, window.NewFixedWindows(time.Minute),
		beam.ParDo(s, stamp, beam.Create(s, minute("sensor-1", 21.5), minute("rogue-9", 40))))
	enriched := enrich.Join(s, aggs, "../../testdata/registry/devices.csv")
	beam.ParDo0(s, printEnriched, enriched)
	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		log.Fatal(err)
	}
	// Unordered output:
	// sensor-1 temperature mean 21.5: site berlin, attributes [model owner site]
	// rogue-9 temperature mean 40: site (unknown device), attributes []
}
