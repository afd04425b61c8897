package enrich

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"cloud.google.com/go/bigquery"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
)

// TestLoadBigQuery reads a registry table through the real BigQuery client
// from the local BigQuery test server.
func TestLoadBigQuery(t *testing.T) {
	srv := bqtest.New(t)
	schema := bigquery.Schema{
		{Name: "device_id", Type: bigquery.StringFieldType, Required: true},
		{Name: "site", Type: bigquery.StringFieldType},
		{Name: "floor", Type: bigquery.IntegerFieldType},
		{Name: "active", Type: bigquery.BooleanFieldType},
	}
	if err := srv.CreateTable("proj", "fleet", "devices", schema); err != nil {
		t.Fatal(err)
	}
	if err := srv.InsertRows("proj", "fleet", "devices",
		map[string]any{"device_id": "sensor-1", "site": "berlin", "floor": 3, "active": true},
		map[string]any{"device_id": "sensor-2", "site": "paris"},
	); err != nil {
		t.Fatal(err)
	}
	reg, err := Load(context.Background(), "bq://proj:fleet.devices", srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"sensor-1": {"site": "berlin", "floor": "3", "active": "true"},
		"sensor-2": {"site": "paris"}, // NULL columns are left out
	}
	if !reflect.DeepEqual(reg.Devices, want) {
		t.Errorf("Load(bq) = %v, want %v", reg.Devices, want)
	}

	// A repeated id is an error naming the table and the row.
	if err := srv.InsertRows("proj", "fleet", "devices", map[string]any{"device_id": "sensor-1"}); err != nil {
		t.Fatal(err)
	}
	_, err = Load(context.Background(), "bq://proj:fleet.devices", srv.ClientOptions()...)
	if err == nil || !strings.Contains(err.Error(), `bq://proj:fleet.devices: row 3: duplicate device_id "sensor-1"`) {
		t.Errorf("Load(bq with a repeated id) error = %v", err)
	}

	// A table without a device_id column.
	if err := srv.CreateTable("proj", "fleet", "other", bigquery.Schema{{Name: "id", Type: bigquery.StringFieldType}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.InsertRows("proj", "fleet", "other", map[string]any{"id": "x"}); err != nil {
		t.Fatal(err)
	}
	_, err = Load(context.Background(), "bq://proj:fleet.other", srv.ClientOptions()...)
	if err == nil || !strings.Contains(err.Error(), "bq://proj:fleet.other: row 1: no device_id column") {
		t.Errorf("Load(bq without device_id) error = %v", err)
	}
}
