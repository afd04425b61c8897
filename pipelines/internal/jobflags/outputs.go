package jobflags

import (
	"fmt"
	"log"
	"maps"
	"slices"
	"strings"

	"github.com/mqttbeam/mqttbeam/pipelines/internal/outputs"
)

// OpenOutputs makes a job's outputs from its output flags: local JSON lines
// files in dir when it is set, otherwise the BigQuery tables (a rows.Tables
// name -> PROJECT:DATASET.TABLE), reached through bigqueryEndpoint when it is
// set (see outputs.BigQueryEndpoint). The returned closeFn stops what was
// started (the embedded BigQuery server, after logging its tables' row
// counts, since they go away with the process); call it after the run.
// Errors name the flag (--output_dir, --bigquery_endpoint).
func OpenOutputs(dir string, tables map[string]string, bigqueryEndpoint string) (out *outputs.Outputs, closeFn func(), err error) {
	if dir != "" {
		out, err := outputs.Local(dir)
		if err != nil {
			return nil, nil, Errorf("output_dir", "%v", err)
		}
		return out, func() {}, nil
	}
	if bigqueryEndpoint == "" {
		return outputs.BigQuery(tables), func() {}, nil
	}
	endpoint, srv, err := outputs.BigQueryEndpoint(bigqueryEndpoint)
	if err != nil {
		return nil, nil, Errorf("bigquery_endpoint", "%v", err)
	}
	closeFn = func() {}
	if srv != nil {
		closeFn = func() {
			for _, name := range slices.Sorted(maps.Keys(tables)) {
				project, rest, _ := strings.Cut(tables[name], ":")
				dataset, table, _ := strings.Cut(rest, ".")
				if rs, err := srv.Rows(project, dataset, table); err == nil {
					log.Printf("embedded BigQuery: %s has %d rows", tables[name], len(rs))
				} else {
					log.Printf("embedded BigQuery: %s: nothing was written to it (%v)", tables[name], err)
				}
			}
			srv.Close()
		}
	}
	return outputs.BigQuery(tables, endpoint), closeFn, nil
}

// ValidateOutputs checks a job's output flags: --output_dir and a table flag
// (tableFlag, e.g. "output_table", with its value table) exclude each other,
// Dataflow needs the table, and --bigquery_endpoint is for local runs with a
// table. It returns the output directory to use: dir, or "out" for a local
// run given neither.
func ValidateOutputs(runner, tableFlag, table, dir, bigqueryEndpoint string) (string, error) {
	local := IsLocal(runner)
	var errs []error
	switch {
	case table != "" && dir != "":
		errs = append(errs, Errorf("output_dir", "give --%s or --output_dir, not both", tableFlag))
	case table == "" && !local:
		errs = append(errs, Errorf(tableFlag, "is required on %s: local files are only for local runners", runner))
	case table == "" && dir == "":
		dir = "out"
	}
	if bigqueryEndpoint != "" {
		if !local {
			errs = append(errs, Errorf("bigquery_endpoint", "is for local runs only"))
		}
		if table == "" {
			errs = append(errs, Errorf("bigquery_endpoint", "needs --%s", tableFlag))
		}
	}
	return dir, Join(errs...)
}

// OutputsString is a short description of where outputs go, for a job's start-up
// line.
func OutputsString(dir, table string) string {
	if table != "" {
		return "BigQuery " + table
	}
	return fmt.Sprintf("local files in %s", dir)
}
