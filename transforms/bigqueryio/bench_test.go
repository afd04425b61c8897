package bigqueryio_test

import (
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
	"github.com/mqttbeam/mqttbeam/transforms/bigqueryio"
)

// BenchmarkWrite measures rows/s from a Beam pipeline on prism into the
// local server (encode, batch, Storage Write append, validation), for
// regressions: the figure says nothing about BigQuery itself.
func BenchmarkWrite(b *testing.B) {
	const n = 20000
	rows := readings(n)
	for i := 0; i < b.N; i++ {
		srv := bqtest.New(b)
		p, s := beam.NewPipelineWithRoot()
		bigqueryio.Write(s, table, beam.CreateList(s, rows), endpoint(srv), bigqueryio.CreateIfMissing())
		if _, err := ptest.RunWithMetrics(p); err != nil {
			b.Fatal(err)
		}
		if got, err := srv.Rows(project, dataset, tableID); err != nil || len(got) != n {
			b.Fatalf("stored %d rows (%v), want %d", len(got), err, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
