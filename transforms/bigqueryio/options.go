package bigqueryio

import (
	"errors"
	"net/url"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// Option configures Write. An option given an invalid value makes Write fail
// with an error that names the option.
type Option func(*config) error

// config holds every setting of a Write. It travels inside the DoFns, so its
// fields are exported and serializable; users set them through Options.
type config struct {
	SchemaJSON      string // the rows' schema, as bigquery.Schema.ToJSONFields
	Reshuffle       bool
	BatchRows       int64
	BatchBytes      int64
	FlushInterval   time.Duration
	CreateIfMissing bool
	PartitionField  string
	ClusterFields   []string
	RetryTimeout    time.Duration
	DeadLetterTable string
	RESTEndpoint    string
	GRPCEndpoint    string
	Insecure        bool
}

func defaultConfig() config {
	return config{
		Reshuffle:     true,
		BatchRows:     500,
		BatchBytes:    5 << 20,
		FlushInterval: 2 * time.Second,
		RetryTimeout:  2 * time.Minute,
	}
}

func newConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			return cfg, errors.New("nil Option")
		}
		if err := opt(&cfg); err != nil {
			return cfg, err
		}
	}
	if (cfg.PartitionField != "" || len(cfg.ClusterFields) > 0) && !cfg.CreateIfMissing {
		return cfg, errors.New("options PartitionBy and ClusterBy need CreateIfMissing")
	}
	return cfg, nil
}

// Schema sets the table schema of the rows. It is required when the rows are
// Row values, and overrides the schema inferred from a struct type.
func Schema(schema bigquery.Schema) Option {
	return func(c *config) error {
		if len(schema) == 0 {
			return optcheck.Errorf("Schema", "must have at least one field")
		}
		b, err := schema.ToJSONFields()
		if err != nil {
			return optcheck.Errorf("Schema", "%v", err)
		}
		c.SchemaJSON = string(b)
		return nil
	}
}

// NoReshuffle writes the rows in the bundles they arrive in. By default
// they are redistributed first (beam.Reshuffle), so that the writes run in
// parallel on every worker even when few workers produce the rows (one MQTT
// reader, a combine); skip it when the rows are already spread out.
func NoReshuffle() Option {
	return func(c *config) error {
		c.Reshuffle = false
		return nil
	}
}

// BatchSize sets the most rows one append carries (default 500).
func BatchSize(rows int) Option {
	return func(c *config) error {
		if rows < 1 {
			return optcheck.Errorf("BatchSize", "must be >= 1, got %d", rows)
		}
		c.BatchRows = int64(rows)
		return nil
	}
}

// BatchBytes sets the encoded size at which a batch is written (default
// 5 MiB; an AppendRows request may not exceed 10 MB).
func BatchBytes(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 9<<20 {
			return optcheck.Errorf("BatchBytes", "must be between 1 and %d, got %d", 9<<20, n)
		}
		c.BatchBytes = int64(n)
		return nil
	}
}

// FlushInterval sets how long a row may wait in a partial batch while a
// bundle is being processed (default 2s). A batch is also sent when the
// bundle finishes, which streaming runners do every few seconds at most.
func FlushInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Millisecond {
			return optcheck.Errorf("FlushInterval", "must be >= 1ms, got %v", d)
		}
		c.FlushInterval = d
		return nil
	}
}

// CreateIfMissing creates the table (and its dataset) when it does not exist,
// with the rows' schema. Without it a missing table fails the pipeline.
func CreateIfMissing() Option {
	return func(c *config) error {
		c.CreateIfMissing = true
		return nil
	}
}

// PartitionBy makes a created table partitioned by day on column, a
// TIMESTAMP, DATE or DATETIME column of the schema (e.g. the event or window
// time).
// It needs CreateIfMissing.
func PartitionBy(column string) Option {
	return func(c *config) error {
		if column == "" {
			return optcheck.Errorf("PartitionBy", "column must not be empty")
		}
		c.PartitionField = column
		return nil
	}
}

// ClusterBy makes a created table clustered on up to four columns (e.g.
// "device_id"). It needs CreateIfMissing.
func ClusterBy(columns ...string) Option {
	return func(c *config) error {
		if len(columns) == 0 || len(columns) > 4 {
			return optcheck.Errorf("ClusterBy", "needs 1 to 4 columns, got %d", len(columns))
		}
		for _, col := range columns {
			if col == "" {
				return optcheck.Errorf("ClusterBy", "column must not be empty")
			}
		}
		c.ClusterFields = append([]string(nil), columns...)
		return nil
	}
}

// RetryTimeout bounds the time spent retrying transient errors (HTTP 5xx
// and 429, gRPC Unavailable, ResourceExhausted, Internal, DeadlineExceeded,
// Aborted) for one batch (default 2m). After it the bundle fails and the
// runner retries it: nothing is dropped.
func RetryTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optcheck.Errorf("RetryTimeout", "must be > 0, got %v", d)
		}
		c.RetryTimeout = d
		return nil
	}
}

// DeadLetterTable also writes the dead letters to table
// (PROJECT:DATASET.TABLE, created when missing with the DeadLetter schema).
func DeadLetterTable(table string) Option {
	return func(c *config) error {
		if _, err := parseTable(table); err != nil {
			return optcheck.Errorf("DeadLetterTable", "%v", err)
		}
		c.DeadLetterTable = table
		return nil
	}
}

// Endpoint points the clients at a local server (internal/bqtest, an
// emulator): restURL for the REST API (e.g. "http://127.0.0.1:9050/bigquery/v2/")
// and grpcAddr ("host:port") for the Storage Write API. It switches to no
// authentication and plaintext gRPC, so use it for local servers only.
func Endpoint(restURL, grpcAddr string) Option {
	return func(c *config) error {
		if u, err := url.Parse(restURL); err != nil || u.Scheme == "" || u.Host == "" {
			return optcheck.Errorf("Endpoint", "restURL must be an absolute URL, got %q", restURL)
		}
		if grpcAddr == "" {
			return optcheck.Errorf("Endpoint", "grpcAddr must not be empty")
		}
		c.RESTEndpoint, c.GRPCEndpoint, c.Insecure = restURL, grpcAddr, true
		return nil
	}
}
