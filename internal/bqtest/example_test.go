package bqtest_test

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/bigquery"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
)

// Start a server, create a table, write through the real client and look at
// what was stored. A row that breaks the schema is refused as BigQuery would.
func Example() {
	srv, err := bqtest.Start()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	schema := bigquery.Schema{
		{Name: "device_id", Type: bigquery.StringFieldType, Required: true},
		{Name: "temperature", Type: bigquery.FloatFieldType},
	}
	if err := srv.CreateTable("demo", "telemetry", "readings", schema); err != nil {
		panic(err)
	}

	ctx := context.Background()
	client, err := bigquery.NewClient(ctx, "demo", srv.ClientOptions()...)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	ins := client.Dataset("telemetry").Table("readings").Inserter()
	err = ins.Put(ctx, []*bigquery.ValuesSaver{
		{Schema: schema, Row: []bigquery.Value{"sensor-1", 21.5}},
	})
	fmt.Println("insert:", err)
	err = ins.Put(ctx, []*bigquery.ValuesSaver{
		{Schema: schema, Row: []bigquery.Value{nil, 19.0}},
	})
	var rowErrs bigquery.PutMultiError
	if errors.As(err, &rowErrs) {
		fmt.Println("insert: row", rowErrs[0].RowIndex, "rejected:", rowErrs[0].Errors[0].(*bigquery.Error).Message)
	}

	rows, err := srv.Rows("demo", "telemetry", "readings")
	if err != nil {
		panic(err)
	}
	fmt.Println(rows)
	// Output:
	// insert: <nil>
	// insert: row 0 rejected: Missing required field: device_id.
	// [map[device_id:sensor-1 temperature:21.5]]
}
