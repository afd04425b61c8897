package metadata_test

import (
	"fmt"
	"log"

	"github.com/mqttbeam/mqttbeam/templates/internal/metadata"
)

// Parse a template's metadata and render the parameter table of its README.
func ExampleTable() {
	t, err := metadata.Parse([]byte(`{
  "name": "demo",
  "description": "Reads MQTT, writes BigQuery.",
  "streaming": true,
  "supportsAtLeastOnce": true,
  "parameters": [
    {"name": "output_table", "label": "Output table", "helpText": "PROJECT:DATASET.TABLE",
     "paramType": "BIGQUERY_TABLE", "regexes": ["^[a-z0-9-]+:[A-Za-z0-9_]+\\.[A-Za-z0-9_-]+$"]},
    {"name": "qos", "label": "QoS", "helpText": "0|1|2", "isOptional": true, "paramType": "TEXT"}
  ]
}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(metadata.Table(t))
	// Output:
	// | Parameter | Required | Type | Description |
	// |---|---|---|---|
	// | `output_table` | yes | BIGQUERY_TABLE | **Output table.** PROJECT:DATASET.TABLE |
	// | `qos` | no | TEXT | **QoS.** 0\|1\|2 |
}
