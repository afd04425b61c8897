// Package bigqueryio writes Beam PCollections to BigQuery tables with the
// Storage Write API (default stream, at least once).
//
//	dead := bigqueryio.Write(s, "my-project:telemetry.readings", rows,
//		bigqueryio.CreateIfMissing(),
//		bigqueryio.PartitionBy("event_time"),
//		bigqueryio.ClusterBy("device_id"),
//		bigqueryio.DeadLetterTable("my-project:telemetry.dead_letters"))
//
// Rows are a struct type with `bigquery` tags (the schema is inferred) or
// Row values with the Schema option. Rows BigQuery rejects come back as
// DeadLetters; transient errors are retried with backoff for up to
// RetryTimeout, then the bundle fails so the runner retries it: no row is
// dropped silently. Duplicates are possible after a retried bundle.
//
// Why the Storage Write API and not insertAll: it is cheaper (about half the
// price per GB), has higher quotas, takes batches of binary rows over one
// gRPC stream per worker instead of a JSON request per batch, and reports
// row errors per row, which lets Write dead-letter exactly the rejected rows
// and re-send the others.
//
// Metrics (namespace "bigqueryio"): rows_written, rows_retried (rows re-sent
// after a transient error), rows_rejected (dead letters).
//
// Tests and the local demo point the clients at internal/bqtest with
// Endpoint; production uses Application Default Credentials.
package bigqueryio
