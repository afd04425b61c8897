// Package outputs writes a pipeline's outputs, one per table of
// transforms/rows, to local newline-delimited JSON files or to BigQuery, and
// gathers the dead letters of every step into one dead-letter output.
package outputs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"

	"github.com/mqttbeam/mqttbeam/pipelines/internal/progress"
	"github.com/mqttbeam/mqttbeam/transforms/bigqueryio"
	"github.com/mqttbeam/mqttbeam/transforms/jsonl"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// Outputs writes a job's outputs (rows.Tables) to local JSON lines files or
// to BigQuery.
type Outputs struct {
	// dir is the local output directory; empty when writing to BigQuery.
	dir string
	// tables maps an output to its BigQuery table; an output without a
	// table (the raw readings without --raw_table) is not written.
	tables map[string]string
	// bigquery are the options every BigQuery write gets.
	bigquery []bigqueryio.Option
	// Count feeds the local progress report (package progress) with the
	// rows of each output, under the output's name.
	Count bool

	// deadLetters collects the dead letters of every step, written once
	// by finish.
	deadLetters []beam.PCollection
}

// Local writes to dir/{name}.jsonl, replacing the files of an earlier run.
func Local(dir string) (*Outputs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	for _, t := range rows.Tables() {
		if err := os.Remove(filepath.Join(dir, t.Name+".jsonl")); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("outputs: clearing the previous run's output: %w", err)
		}
	}
	return &Outputs{dir: dir}, nil
}

// BigQuery writes each output to its table in tables (an output name of
// rows.Tables -> PROJECT:DATASET.TABLE), creating missing tables with the
// output's partitioning and clustering. An output without a table is not
// written; opts go to every bigqueryio.Write.
func BigQuery(tables map[string]string, opts ...bigqueryio.Option) *Outputs {
	return &Outputs{tables: tables, bigquery: opts}
}

// Write writes the rows of one output (a rows.Tables name), from one or
// more PCollections of its row type; dead letters wait for Finish.
func (o *Outputs) Write(s beam.Scope, name string, cols ...beam.PCollection) {
	// The sinks batch rows across windows; rows keep their own window
	// columns.
	global := make([]beam.PCollection, len(cols))
	for i, c := range cols {
		global[i] = beam.WindowInto(s, window.NewGlobalWindows(), c)
	}
	col := beam.Flatten(s, global...)
	if name == rows.DeadLettersTable {
		o.deadLetters = append(o.deadLetters, col)
		return
	}
	if failed, ok := o.writeTable(s, name, col); ok {
		o.deadLetters = append(o.deadLetters, beam.ParDo(s, rows.FromBigQueryFailure, failed))
	}
}

// Finish writes the dead letters of every step, BigQuery's refusals
// included. Call it once, after the last Write.
func (o *Outputs) Finish(s beam.Scope) {
	if len(o.deadLetters) == 0 {
		return
	}
	// Rows the dead letter table itself refuses are counted in
	// bigqueryio/rows_rejected and logged by the sink.
	o.writeTable(s, rows.DeadLettersTable, beam.Flatten(s, o.deadLetters...))
}

// writeTable writes col to the output's file or table and returns the
// table's refusals, with ok false when nothing can be refused.
func (o *Outputs) writeTable(s beam.Scope, name string, col beam.PCollection) (failed beam.PCollection, ok bool) {
	s = s.Scope("Write " + name)
	progress.CountLocal(s, o.Count, name, col)
	if o.dir != "" {
		jsonl.Write(s, filepath.Join(o.dir, name+".jsonl"), col)
		return beam.PCollection{}, false
	}
	table, found := o.tables[name]
	if !found {
		return beam.PCollection{}, false
	}
	def := tableDef(name)
	opts := append([]bigqueryio.Option{bigqueryio.CreateIfMissing(),
		bigqueryio.PartitionBy(def.PartitionBy), bigqueryio.ClusterBy(def.ClusterBy...)}, o.bigquery...)
	return bigqueryio.Write(s, table, col, opts...), true
}

// tableDef is the definition of one of rows.Tables.
func tableDef(name string) rows.Table {
	for _, t := range rows.Tables() {
		if t.Name == name {
			return t
		}
	}
	panic(fmt.Sprintf("outputs: no output table %q in rows.Tables", name))
}
