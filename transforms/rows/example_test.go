package rows_test

import (
	"fmt"
	"log"

	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// Tables describes the BigQuery tables the pipelines write, with their
// partitioning and clustering.
func ExampleTables() {
	for _, t := range rows.Tables() {
		s, err := t.Schema()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d columns, partitioned on %s, clustered by %v\n", t.Name, len(s), t.PartitionBy, t.ClusterBy)
	}
	// Output:
	// aggregates: 20 columns, partitioned on window_start, clustered by [device_id metric]
	// readings: 8 columns, partitioned on event_time, clustered by [device_id]
	// dead_letters: 6 columns, partitioned on received_at, clustered by [stage reason]
	// commands: 7 columns, partitioned on issued_at, clustered by [device_id rule]
}
