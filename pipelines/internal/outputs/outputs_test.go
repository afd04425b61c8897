package outputs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobtest"
	"github.com/mqttbeam/mqttbeam/transforms/bigqueryio"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func commands(s beam.Scope, devices ...string) beam.PCollection {
	var cs []rows.Command
	for _, d := range devices {
		cs = append(cs, rows.Command{IssuedAt: at, DeviceID: d, Rule: "r", Status: rows.CommandIssued})
	}
	return beam.CreateList(s, cs)
}

func lines(t *testing.T, path string) []map[string]any {
	return jobtest.ReadJSONL[map[string]any](t, path)
}

// Local outputs replace an earlier run's files, write one file per output
// and gather the dead letters of every step in one file.
func TestLocal(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, rows.CommandsTable+".jsonl")
	require.NoError(t, os.WriteFile(stale, []byte(`{"device_id":"old"}`+"\n"), 0o644))

	out, err := Local(dir)
	require.NoError(t, err)
	p, s := beam.NewPipelineWithRoot()
	out.Write(s, rows.CommandsTable, commands(s, "a", "b"), commands(s, "c"))
	out.Write(s, rows.DeadLettersTable, beam.Create(s, rows.DeadLetter{Stage: "parse", Reason: "not_json", ReceivedAt: at}))
	out.Write(s, rows.DeadLettersTable, beam.Create(s, rows.DeadLetter{Stage: "aggregate", Reason: "too_late", ReceivedAt: at}))
	out.Finish(s)
	ptest.RunAndValidate(t, p)

	var devices []string
	for _, l := range lines(t, stale) {
		devices = append(devices, l["device_id"].(string))
	}
	assert.ElementsMatch(t, []string{"a", "b", "c"}, devices)
	assert.Len(t, lines(t, filepath.Join(dir, rows.DeadLettersTable+".jsonl")), 2)
}

// BigQuery outputs create each table with its partitioning and clustering,
// and a row BigQuery refuses becomes a dead letter in the dead-letter table.
func TestBigQuery(t *testing.T) {
	srv := bqtest.New(t)
	srv.RejectRows(func(row map[string]any) string {
		if row["device_id"] == "bad" {
			return "rejected for the test"
		}
		return ""
	})
	tables := map[string]string{
		rows.CommandsTable:    "my-project:telemetry.commands",
		rows.DeadLettersTable: "my-project:telemetry.dead_letters",
	}
	out := BigQuery(tables, bigqueryio.Endpoint(srv.RESTURL(), srv.GRPCAddr()))
	p, s := beam.NewPipelineWithRoot()
	out.Write(s, rows.CommandsTable, commands(s, "a", "bad", "c"))
	out.Write(s, rows.ReadingsTable, beam.Create(s, rows.Reading{DeviceID: "x", EventTime: at, ReceivedAt: at})) // no table: not written
	out.Finish(s)
	ptest.RunAndValidate(t, p)

	cmds, err := srv.Rows("my-project", "telemetry", "commands")
	require.NoError(t, err)
	assert.Len(t, cmds, 2)
	dead, err := srv.Rows("my-project", "telemetry", "dead_letters")
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, rows.StageBigQuery, dead[0]["stage"])
	assert.Equal(t, "my-project:telemetry.commands", dead[0]["topic"])
	assert.Contains(t, dead[0]["detail"], "rejected for the test")

	tbl, err := srv.Table("my-project", "telemetry", "commands")
	require.NoError(t, err)
	require.NotNil(t, tbl.TimePartitioning)
	assert.Equal(t, "issued_at", tbl.TimePartitioning.Field)
	require.NotNil(t, tbl.Clustering)
	assert.Equal(t, []string{"device_id", "rule"}, tbl.Clustering.Fields)
	_, err = srv.Rows("my-project", "telemetry", "readings")
	assert.Error(t, err, "an output without a table is not written")
}
