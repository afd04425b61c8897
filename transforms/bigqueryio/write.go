package bigqueryio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func init() {
	register.DoFn4x1[context.Context, beam.X, func([]byte), func(DeadLetter), error](&encodeFn{})
	register.DoFn3x1[context.Context, []byte, func(DeadLetter), error](&writeFn{})
	register.Emitter1[[]byte]()
	register.Emitter1[DeadLetter]()
	beam.RegisterType(reflect.TypeOf((*DeadLetter)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Row)(nil)).Elem())
}

// Beam metrics of Write, in namespace "bigqueryio".
var (
	rowsWritten  = beam.NewCounter("bigqueryio", "rows_written")
	rowsRetried  = beam.NewCounter("bigqueryio", "rows_retried")
	rowsRejected = beam.NewCounter("bigqueryio", "rows_rejected")
)

// DeadLetter is a row that was not written: BigQuery rejected it (a row
// error) or it could not be converted to the table schema.
type DeadLetter struct {
	Table string    `bigquery:"table"` // PROJECT:DATASET.TABLE the row was meant for
	Row   string    `bigquery:"row"`   // the row as a JSON object
	Error string    `bigquery:"error"` // why it was not written
	Time  time.Time `bigquery:"time"`  // when it was rejected
}

// Row is a row given as a JSON object keyed by column name, for rows without
// a Go struct type (Beam cannot carry map[string]any in a PCollection). Write
// needs the Schema option for it. TIMESTAMP values are RFC 3339 strings;
// NUMERIC, DATE, DATETIME and TIME values are strings in BigQuery's formats.
type Row struct {
	JSON string
}

// MapRow makes a Row of m.
func MapRow(m map[string]any) (Row, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return Row{}, fmt.Errorf("bigqueryio: MapRow: %w", err)
	}
	return Row{JSON: string(b)}, nil
}

// Write writes rows, a PCollection of a struct type with `bigquery` tags
// (the schema is inferred with bigquery.InferSchema) or of Row (maps, with
// the Schema option), to table, given as PROJECT:DATASET.TABLE. It uses
// the Storage Write API's default stream: rows are redistributed over the
// workers (see NoReshuffle), batched by count, bytes and FlushInterval within
// each bundle, and appended at least once (a bundle commits only after its
// rows are appended or dead-lettered; a retried bundle may append rows again).
//
// The table is checked when the first bundle starts: a missing table fails
// (or is created with CreateIfMissing), a schema that cannot take the rows
// fails with an error naming the table and the field. Transient errors are
// retried with exponential backoff and jitter for up to RetryTimeout, then
// the bundle fails and the runner retries it. Rows BigQuery rejects are
// returned in deadLetters, a PCollection<DeadLetter> in the global window
// (and written to DeadLetterTable if set), while the other rows of their
// batch are re-sent. Rows that cannot be converted to the schema are dead
// letters too.
//
// Write panics when the table, the input or an option is invalid; TryWrite
// returns the error instead.
func Write(s beam.Scope, table string, rows beam.PCollection, opts ...Option) (deadLetters beam.PCollection) {
	deadLetters, err := TryWrite(s, table, rows, opts...)
	if err != nil {
		panic(err)
	}
	return deadLetters
}

// TryWrite is Write returning an error instead of panicking.
func TryWrite(s beam.Scope, table string, rows beam.PCollection, opts ...Option) (deadLetters beam.PCollection, err error) {
	fail := func(err error) (beam.PCollection, error) {
		return beam.PCollection{}, fmt.Errorf("bigqueryio.Write: %w", err)
	}
	if _, err := parseTable(table); err != nil {
		return fail(err)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return fail(err)
	}
	if !rows.IsValid() {
		return fail(errors.New("rows is an invalid PCollection"))
	}
	if cfg.SchemaJSON == "" {
		if rows.Type().Type() == reflect.TypeOf(Row{}) {
			return fail(errors.New("rows of type bigqueryio.Row need the Schema option"))
		}
		if cfg.SchemaJSON, err = inferSchema(rows.Type().Type()); err != nil {
			return fail(err)
		}
	}
	if err := checkLayout(cfg); err != nil {
		return fail(err)
	}
	s = s.Scope("bigqueryio.Write")
	rows = beam.WindowInto(s, window.NewGlobalWindows(), rows)
	encoded, encodeDead := beam.ParDo2(s, &encodeFn{Table: table, Cfg: cfg}, rows)
	if cfg.Reshuffle {
		encoded = beam.Reshuffle(s, encoded)
	}
	writeDead := beam.ParDo(s, &writeFn{Table: table, Cfg: cfg}, encoded)
	deadLetters = beam.Flatten(s, encodeDead, writeDead)
	if cfg.DeadLetterTable == "" {
		return deadLetters, nil
	}
	// The dead letters of the dead letter table (if it rejects any) join the
	// output, so nothing is lost silently.
	lost, err := TryWrite(s, cfg.DeadLetterTable, deadLetters, deadLetterOptions(cfg)...)
	if err != nil {
		return fail(err)
	}
	return beam.Flatten(s, deadLetters, lost), nil
}

// deadLetterOptions configures the Write to a dead letter table: created
// when missing, partitioned by time, with the endpoint and limits of cfg.
func deadLetterOptions(cfg config) []Option {
	return []Option{func(c *config) error {
		*c = cfg
		c.SchemaJSON, c.DeadLetterTable, c.Reshuffle = "", "", false
		c.CreateIfMissing, c.PartitionField, c.ClusterFields = true, "time", nil
		return nil
	}}
}

// checkLayout checks that the PartitionBy and ClusterBy columns are
// top-level columns of the schema, of a type BigQuery accepts for them.
func checkLayout(cfg config) error {
	schema, err := bigquery.SchemaFromJSON([]byte(cfg.SchemaJSON))
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	types := make(map[string]bigquery.FieldType, len(schema))
	for _, f := range schema {
		if !f.Repeated {
			types[f.Name] = f.Type
		}
	}
	if c := cfg.PartitionField; c != "" {
		switch types[c] {
		case bigquery.TimestampFieldType, bigquery.DateFieldType, bigquery.DateTimeFieldType:
		default:
			return fmt.Errorf("option PartitionBy: column %q must be a TIMESTAMP, DATE or DATETIME column of the schema", c)
		}
	}
	for _, c := range cfg.ClusterFields {
		switch types[c] {
		case "", bigquery.FloatFieldType, bigquery.JSONFieldType, bigquery.RecordFieldType:
			return fmt.Errorf("option ClusterBy: column %q must be a non-repeated column of the schema of a clusterable type", c)
		}
	}
	return nil
}

// inferSchema returns the JSON schema of a struct type's rows.
func inferSchema(t reflect.Type) (string, error) {
	st := t
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return "", fmt.Errorf("rows of type %v need the Schema option (only struct types have an inferred schema)", t)
	}
	schema, err := bigquery.InferSchema(reflect.New(st).Elem().Interface())
	if err != nil {
		return "", fmt.Errorf("infer schema of %v: %w", t, err)
	}
	b, err := schema.ToJSONFields()
	if err != nil {
		return "", fmt.Errorf("schema of %v: %w", t, err)
	}
	return string(b), nil
}

// encodeFn serializes each row to the proto of the table schema.
type encodeFn struct {
	Table string
	Cfg   config

	codec *codec
}

func (f *encodeFn) Setup() error {
	schema, err := bigquery.SchemaFromJSON([]byte(f.Cfg.SchemaJSON))
	if err != nil {
		return fmt.Errorf("bigqueryio: schema: %w", err)
	}
	f.codec, err = newCodec(schema)
	return err
}

func (f *encodeFn) ProcessElement(ctx context.Context, row beam.X, emit func([]byte), dead func(DeadLetter)) error {
	b, err := f.codec.encode(row)
	if err != nil {
		rowsRejected.Inc(ctx, 1)
		dead(DeadLetter{Table: f.Table, Row: rowJSON(row), Error: "convert row: " + err.Error(), Time: time.Now().UTC()})
		return nil
	}
	emit(b)
	return nil
}

// rowJSON renders a row that could not be converted for its dead letter.
func rowJSON(row any) string {
	if r, ok := row.(Row); ok {
		return r.JSON
	}
	if b, err := json.Marshal(row); err == nil {
		return string(b)
	}
	b, _ := json.Marshal(fmt.Sprintf("%+v", row)) // a string always marshals
	return string(b)
}

// destination is the table a writeFn appends to.
type destination struct {
	ref    tableRef
	codec  *codec
	stream *managedwriter.ManagedStream
}

// writeFn appends the rows of a bundle to the table's default stream in
// batches: one is sent when it reaches BatchSize rows or BatchBytes, when its
// oldest row has waited FlushInterval, and when the bundle finishes, so the
// bundle commits only after all its rows are appended or dead-lettered.
type writeFn struct {
	Table string
	Cfg   config

	clients *clients
	project string
	dest    *destination

	batch   [][]byte
	bytes   int64
	started time.Time // when the oldest row of batch arrived
	dead    []DeadLetter
}

func (f *writeFn) Setup(ctx context.Context) error {
	ref, err := parseTable(f.Table)
	if err != nil {
		return err
	}
	schema, err := bigquery.SchemaFromJSON([]byte(f.Cfg.SchemaJSON))
	if err != nil {
		return fmt.Errorf("bigqueryio: schema: %w", err)
	}
	if f.clients, err = acquireClients(ctx, f.Cfg, ref.Project); err != nil {
		return err
	}
	f.project = ref.Project
	f.dest, err = f.open(ctx, ref, schema)
	return err
}

// open checks (or creates) the table and opens a writer on its default stream.
func (f *writeFn) open(ctx context.Context, ref tableRef, schema bigquery.Schema) (*destination, error) {
	err := retry(ctx, f.Cfg.RetryTimeout, func() error { return ensureTable(ctx, f.clients.bq, ref, schema, f.Cfg) }, nil)
	if err != nil {
		return nil, err
	}
	d := &destination{ref: ref}
	if d.codec, err = newCodec(schema); err != nil {
		return nil, err
	}
	d.stream, err = f.clients.writer.NewManagedStream(context.WithoutCancel(ctx),
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(ref.Project, ref.Dataset, ref.Table)),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithSchemaDescriptor(d.codec.dp))
	if err != nil {
		return nil, fmt.Errorf("bigqueryio: open the default stream of %s: %w", ref, err)
	}
	return d, nil
}

func (f *writeFn) Teardown() error {
	var errs []error
	// Closing a stream whose connection already ended reports io.EOF.
	if f.dest != nil {
		if err := f.dest.stream.Close(); err != nil && !errors.Is(err, io.EOF) {
			errs = append(errs, fmt.Errorf("bigqueryio: close the stream of %s: %w", f.dest.ref, err))
		}
	}
	if f.clients != nil {
		errs = append(errs, releaseClients(f.Cfg, f.project))
	}
	return errors.Join(errs...)
}

func (f *writeFn) StartBundle(context.Context, func(DeadLetter)) error {
	f.batch, f.bytes, f.dead = f.batch[:0], 0, nil
	return nil
}

func (f *writeFn) ProcessElement(ctx context.Context, row []byte, dead func(DeadLetter)) error {
	if len(f.batch) > 0 && f.bytes+int64(len(row)) > f.Cfg.BatchBytes {
		if err := f.flush(ctx); err != nil {
			return err
		}
	}
	if len(f.batch) == 0 {
		f.started = time.Now()
	}
	f.batch = append(f.batch, row)
	f.bytes += int64(len(row))
	if int64(len(f.batch)) >= f.Cfg.BatchRows || time.Since(f.started) >= f.Cfg.FlushInterval {
		return f.flush(ctx)
	}
	return nil
}

func (f *writeFn) FinishBundle(ctx context.Context, dead func(DeadLetter)) error {
	if err := f.flush(ctx); err != nil {
		return err
	}
	for _, dl := range f.dead {
		dead(dl)
	}
	f.dead = nil
	return nil
}

// flush appends the batch and keeps its dead letters for FinishBundle.
func (f *writeFn) flush(ctx context.Context) error {
	if len(f.batch) == 0 {
		return nil
	}
	rejected, err := f.append(ctx, f.batch)
	if err != nil {
		return err
	}
	f.batch, f.bytes = f.batch[:0], 0
	f.dead = append(f.dead, rejected...)
	return nil
}

// append writes rows to the table, retrying transient errors and removing
// the rows BigQuery rejects, which it returns as dead letters.
func (f *writeFn) append(ctx context.Context, rows [][]byte) ([]DeadLetter, error) {
	d := f.dest
	var rejected []DeadLetter
	pending := rows
	err := retry(ctx, f.Cfg.RetryTimeout, func() error {
		for len(pending) > 0 {
			res, err := d.stream.AppendRows(ctx, pending)
			if err != nil {
				return err
			}
			resp, err := res.FullResponse(ctx)
			rowErrs := resp.GetRowErrors()
			if err == nil {
				rowsWritten.Inc(ctx, int64(len(pending)))
				return nil
			}
			if len(rowErrs) == 0 {
				return err
			}
			var dl []DeadLetter
			pending, dl = removeRejected(d, pending, rowErrs)
			rowsRejected.Inc(ctx, int64(len(dl)))
			rejected = append(rejected, dl...)
		}
		return nil
	}, func() { rowsRetried.Inc(ctx, int64(len(pending))) })
	if err != nil {
		return nil, fmt.Errorf("bigqueryio: append %d rows to %s: %w", len(pending), d.ref, err)
	}
	return rejected, nil
}

// removeRejected splits rows into the ones to re-send and dead letters.
func removeRejected(d *destination, rows [][]byte, rowErrs []*storagepb.RowError) ([][]byte, []DeadLetter) {
	bad := make(map[int64]string, len(rowErrs))
	for _, re := range rowErrs {
		bad[re.GetIndex()] = re.GetMessage()
	}
	now := time.Now().UTC()
	var keep [][]byte
	var dead []DeadLetter
	for i, r := range rows {
		msg, ok := bad[int64(i)]
		if !ok {
			keep = append(keep, r)
			continue
		}
		dead = append(dead, DeadLetter{Table: d.ref.String(), Row: d.codec.json(r), Error: msg, Time: now})
	}
	return keep, dead
}

// Backoff between retries: it doubles from initialBackoff up to maxBackoff,
// and each wait is drawn at random from half to one and a half of it.
const (
	initialBackoff = 100 * time.Millisecond
	maxBackoff     = 10 * time.Second
)

// retry calls op until it succeeds, fails permanently, or timeout has passed
// since the first call; onRetry runs before each retry.
func retry(ctx context.Context, timeout time.Duration, op func() error, onRetry func()) error {
	deadline := time.Now().Add(timeout)
	backoff := initialBackoff
	for {
		err := op()
		if err == nil || !transient(err) {
			return err
		}
		wait := time.Duration(rand.Int64N(int64(backoff))) + backoff/2
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("gave up retrying after %v: %w", timeout, err)
		}
		if onRetry != nil {
			onRetry()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// transient reports whether err is worth retrying.
func transient(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == http.StatusTooManyRequests || ge.Code >= 500
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.DeadlineExceeded, codes.Aborted:
			return true
		}
	}
	return strings.Contains(err.Error(), "transport is closing")
}
