package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"

	"github.com/mqttbeam/mqttbeam/internal/progress"
	"github.com/mqttbeam/mqttbeam/transforms/bigqueryio"
	"github.com/mqttbeam/mqttbeam/transforms/jsonl"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

// outputs writes the job's outputs (rows.Tables) to local JSON lines files
// or to BigQuery.
type outputs struct {
	// dir is the local output directory; empty when writing to BigQuery.
	dir string
	// tables maps an output to its BigQuery table; an output without a
	// table (the raw readings without --raw_table) is not written.
	tables map[string]string
	// bigquery are the options every BigQuery write gets.
	bigquery []bigqueryio.Option
	// count feeds the local progress report.
	count bool

	// deadLetters collects the dead letters of every step, written once
	// by finish.
	deadLetters []beam.PCollection
}

// localOutputs writes to dir, replacing the files of an earlier run.
func localOutputs(dir string) (*outputs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--output_dir: %w", err)
	}
	for _, t := range rows.Tables() {
		if err := os.Remove(filepath.Join(dir, t.Name+".jsonl")); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("--output_dir: clearing the previous run's output: %w", err)
		}
	}
	return &outputs{dir: dir}, nil
}

// bigQueryOutputs writes to the tables of the flags.
func bigQueryOutputs(cfg *config, opts ...bigqueryio.Option) *outputs {
	tables := map[string]string{
		rows.AggregatesTable:  cfg.OutputTable,
		rows.DeadLettersTable: cfg.DeadLetterTable,
		rows.CommandsTable:    cfg.CommandTable,
	}
	if cfg.RawTable != "" {
		tables[rows.ReadingsTable] = cfg.RawTable
	}
	return &outputs{tables: tables, bigquery: opts}
}

// write writes the rows of one output (a rows.Tables name), from one or
// more PCollections; dead letters wait for finish.
func (o *outputs) write(s beam.Scope, name string, cols ...beam.PCollection) {
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

// finish writes the dead letters of every step, BigQuery's refusals
// included.
func (o *outputs) finish(s beam.Scope) {
	if len(o.deadLetters) == 0 {
		return
	}
	// Rows the dead letter table itself refuses are counted in
	// bigqueryio/rows_rejected and logged by the sink.
	o.writeTable(s, rows.DeadLettersTable, beam.Flatten(s, o.deadLetters...))
}

// writeTable writes col to the output's file or table and returns the
// table's refusals, with ok false when nothing can be refused.
func (o *outputs) writeTable(s beam.Scope, name string, col beam.PCollection) (failed beam.PCollection, ok bool) {
	s = s.Scope("Write " + name)
	if o.count {
		progress.Count(s, name, col)
	}
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
	panic(fmt.Sprintf("no output table %q", name)) // a typo in this package
}
