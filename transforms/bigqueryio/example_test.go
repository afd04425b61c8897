package bigqueryio_test

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
	"github.com/mqttbeam/mqttbeam/transforms/bigqueryio"
)

// Write readings to a table, created with time partitioning and clustering,
// here on the local BigQuery test server (in a job, leave out Endpoint).
func ExampleWrite() {
	srv, err := bqtest.Start()
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	p, s := beam.NewPipelineWithRoot()
	rows := beam.CreateList(s, []reading{ // in a job: parsed telemetry
		{DeviceID: "sensor-1", Value: 21.5, Count: 1, EventTime: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		{DeviceID: "sensor-2", Value: 19, Count: 1, EventTime: time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC)},
	})
	deadLetters := bigqueryio.Write(s, "my-project:telemetry.readings", rows,
		bigqueryio.CreateIfMissing(),
		bigqueryio.PartitionBy("event_time"),
		bigqueryio.ClusterBy("device_id"),
		bigqueryio.Endpoint(srv.RESTURL(), srv.GRPCAddr()))
	_ = deadLetters // e.g. write them to a table of their own with DeadLetterTable

	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		panic(err)
	}

	stored, err := srv.Rows("my-project", "telemetry", "readings")
	if err != nil {
		panic(err)
	}
	sort.Slice(stored, func(i, j int) bool { return stored[i]["device_id"].(string) < stored[j]["device_id"].(string) })
	for _, r := range stored {
		fmt.Println(r["device_id"], r["value"], r["event_time"])
	}
	// Output:
	// sensor-1 21.5 2024-05-01 12:00:00 +0000 UTC
	// sensor-2 19 2024-05-01 12:00:01 +0000 UTC
}
