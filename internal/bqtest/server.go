// Package bqtest is an in-memory BigQuery server for tests and the local
// demo. It speaks the parts of the REST API (datasets, tables, insertAll,
// tabledata.list) and of the Storage Write gRPC API (the default stream) that
// the Go clients call, keeps rows in memory and validates them against the
// table schema the way BigQuery does: types, REQUIRED fields, unknown fields.
// Failures can be injected (FailNext, RejectRows) to test retries and dead
// letters. Real clients reach it with ClientOptions and StorageClientOptions:
// an endpoint and no credentials.
//
// The values stored (what Rows returns), by column type:
//
//	INT64            int64
//	FLOAT64          float64
//	NUMERIC          string (decimal, e.g. "12.5")
//	BIGNUMERIC       string (decimal)
//	BOOL             bool
//	STRING           string
//	BYTES            []byte
//	TIMESTAMP        time.Time (UTC, microsecond precision)
//	DATE             civil.Date
//	DATETIME         civil.DateTime
//	TIME             civil.Time
//	JSON             string (valid JSON)
//	GEOGRAPHY        string
//	RECORD           map[string]any
//	REPEATED (mode)  []any
//
// A NULL column is absent from the row's map.
//
// Over REST it serves datasets get/insert, tables get/insert/patch (a schema
// may only gain NULLABLE fields or relax REQUIRED ones), tabledata.insertAll
// and tabledata.list; over gRPC the Storage Write API's GetWriteStream and
// AppendRows on a table's default stream (projects/P/datasets/D/tables/T/streams/_default).
// Like BigQuery, a write with an invalid or rejected row stores nothing and
// reports the rows (insertAll: insertErrors; AppendRows: row_errors with
// INVALID_ARGUMENT); a writer schema with a column the table lacks, or of
// the wrong type, fails the whole request.
package bqtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Option configures a Server.
type Option func(*config) error

type config struct {
	Location   string
	FailCount  int
	FailCode   int
	RejectFunc func(row map[string]any) string
}

// Location sets the location reported for datasets and write streams
// (default "US").
func Location(loc string) Option {
	return func(c *config) error {
		if loc == "" {
			return errors.New("option Location: must not be empty")
		}
		c.Location = loc
		return nil
	}
}

// FailFirst makes the first n append or insert calls fail with HTTP status
// code (see Server.FailNext).
func FailFirst(n, code int) Option {
	return func(c *config) error {
		if err := checkFailure(n, code); err != nil {
			return fmt.Errorf("option FailFirst: %w", err)
		}
		c.FailCount, c.FailCode = n, code
		return nil
	}
}

// Reject installs a row rejection function from the start (see
// Server.RejectRows).
func Reject(fn func(row map[string]any) string) Option {
	return func(c *config) error {
		if fn == nil {
			return errors.New("option Reject: nil function")
		}
		c.RejectFunc = fn
		return nil
	}
}

func checkFailure(n, code int) error {
	if n < 0 {
		return fmt.Errorf("count must be >= 0, got %d", n)
	}
	if _, ok := failureCodes[code]; !ok {
		return fmt.Errorf("code must be one of 429, 500, 503, 504, got %d", code)
	}
	return nil
}

// table is one table's metadata and rows.
type table struct {
	meta *bq.Table
	rows []map[string]any
}

// Server is a running in-memory BigQuery server. Its methods are safe for
// concurrent use.
type Server struct {
	cfg      config
	httpSrv  *http.Server
	httpLn   net.Listener
	grpcSrv  *grpc.Server
	grpcLn   net.Listener
	closeOne sync.Once

	mu       sync.Mutex
	datasets map[string]*bq.Dataset // key "project:dataset"
	tables   map[string]*table      // key "project:dataset.table"
	failN    int
	failCode int
	reject   func(row map[string]any) string
	stats    Stats
}

// Stats counts what the server was asked to do, for tests to check how a
// client behaved (e.g. that it retried).
type Stats struct {
	Appends      int // AppendRows requests, including failed ones
	Inserts      int // insertAll requests, including failed ones
	Injected     int // calls failed by FailNext or FailFirst
	RejectedRows int // rows refused: invalid or rejected by RejectRows
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// count updates the stats under the lock.
func (s *Server) count(update func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	update(&s.stats)
}

// New starts an in-memory BigQuery server on 127.0.0.1 (REST and Storage
// Write gRPC) and stops it in t.Cleanup. It fails the test if the server
// cannot start.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("bqtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("bqtest: close: %v", err)
		}
	})
	return s
}

// Start is New without testing.TB (for the local demo); Close stops it.
func Start(opts ...Option) (*Server, error) {
	cfg := config{Location: "US"}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("bqtest: nil Option")
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("bqtest: %w", err)
		}
	}
	s := &Server{
		cfg:      cfg,
		datasets: map[string]*bq.Dataset{},
		tables:   map[string]*table{},
		failN:    cfg.FailCount,
		failCode: cfg.FailCode,
		reject:   cfg.RejectFunc,
	}
	var err error
	if s.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("bqtest: listen REST: %w", err)
	}
	if s.grpcLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		s.httpLn.Close()
		return nil, fmt.Errorf("bqtest: listen gRPC: %w", err)
	}
	s.httpSrv = &http.Server{Handler: s.restHandler(), ReadHeaderTimeout: 10 * time.Second}
	s.grpcSrv = grpc.NewServer()
	storagepb.RegisterBigQueryWriteServer(s.grpcSrv, &writeServer{s: s})
	go s.httpSrv.Serve(s.httpLn) //nolint:errcheck // returns ErrServerClosed on Close
	go s.grpcSrv.Serve(s.grpcLn) //nolint:errcheck // returns on Stop
	return s, nil
}

// Close stops both servers. Open streams are cut.
func (s *Server) Close() error {
	var err error
	s.closeOne.Do(func() {
		s.grpcSrv.Stop()
		if e := s.httpSrv.Close(); e != nil {
			err = fmt.Errorf("bqtest: stop REST server: %w", e)
		}
	})
	return err
}

// RESTURL is the base URL of the REST API, e.g.
// "http://127.0.0.1:41234/bigquery/v2/", as bigquery.NewClient takes it in
// option.WithEndpoint.
func (s *Server) RESTURL() string {
	return "http://" + s.httpLn.Addr().String() + "/bigquery/v2/"
}

// GRPCAddr is the host:port of the Storage Write gRPC service (plaintext).
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// ClientOptions make a real *bigquery.Client talk to this server with no
// credentials.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(s.RESTURL()), option.WithoutAuthentication()}
}

// StorageClientOptions make a real managedwriter.Client talk to this server
// with no credentials over plaintext gRPC.
func (s *Server) StorageClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.GRPCAddr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// FailNext makes the next n append (Storage Write) or insertAll calls fail
// with HTTP status code: 503 (gRPC Unavailable), 429 (ResourceExhausted),
// 500 (Internal) or 504 (DeadlineExceeded). Nothing of a failed call is
// stored. It returns an error for other codes or a negative n.
func (s *Server) FailNext(n, code int) error {
	if err := checkFailure(n, code); err != nil {
		return fmt.Errorf("bqtest: FailNext: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, code
	return nil
}

// RejectRows installs fn, called for every valid row written (in its stored
// form, see the package doc); a non-empty result rejects the row with that
// reason, as BigQuery's row errors do: the whole call stores nothing and
// reports the rejected rows. nil removes the function.
func (s *Server) RejectRows(fn func(row map[string]any) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = fn
}

// takeFailure consumes one injected failure, returning its HTTP code or 0.
func (s *Server) takeFailure() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN == 0 {
		return 0
	}
	s.failN--
	s.stats.Injected++
	return s.failCode
}

func tableKey(project, dataset, tbl string) string { return project + ":" + dataset + "." + tbl }

// ensureDataset creates the dataset if missing. Callers hold s.mu.
func (s *Server) ensureDataset(project, dataset string) {
	k := project + ":" + dataset
	if _, ok := s.datasets[k]; !ok {
		s.datasets[k] = newDataset(project, dataset, s.cfg.Location)
	}
}

func newDataset(project, dataset, loc string) *bq.Dataset {
	return &bq.Dataset{
		Kind:             "bigquery#dataset",
		Id:               project + ":" + dataset,
		DatasetReference: &bq.DatasetReference{ProjectId: project, DatasetId: dataset},
		Location:         loc,
	}
}

// CreateTable creates a table (and its dataset, if missing) with schema.
func (s *Server) CreateTable(project, dataset, tbl string, schema bigquery.Schema) error {
	meta := &bq.Table{
		TableReference: &bq.TableReference{ProjectId: project, DatasetId: dataset, TableId: tbl},
		Schema:         &bq.TableSchema{Fields: toBQFields(schema)},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureDataset(project, dataset)
	return s.insertTable(meta)
}

// insertTable stores a new table. Callers hold s.mu.
func (s *Server) insertTable(meta *bq.Table) error {
	ref := meta.TableReference
	if ref == nil || ref.ProjectId == "" || ref.DatasetId == "" || ref.TableId == "" {
		return errors.New("bqtest: table reference needs project, dataset and table")
	}
	if _, ok := s.datasets[ref.ProjectId+":"+ref.DatasetId]; !ok {
		return &apiError{http.StatusNotFound, "notFound", fmt.Sprintf("Not found: Dataset %s:%s", ref.ProjectId, ref.DatasetId)}
	}
	k := tableKey(ref.ProjectId, ref.DatasetId, ref.TableId)
	if _, ok := s.tables[k]; ok {
		return &apiError{http.StatusConflict, "duplicate", "Already Exists: Table " + k}
	}
	if meta.Schema == nil {
		meta.Schema = &bq.TableSchema{}
	}
	if err := checkSchema(meta.Schema.Fields, ""); err != nil {
		return &apiError{http.StatusBadRequest, "invalid", err.Error()}
	}
	meta.Kind = "bigquery#table"
	meta.Id = k
	meta.Type = "TABLE"
	meta.Location = s.cfg.Location
	meta.CreationTime = time.Now().UnixMilli()
	s.tables[k] = &table{meta: meta}
	return nil
}

// checkSchema rejects unknown types and empty records.
func checkSchema(fields []*bq.TableFieldSchema, prefix string) error {
	for _, f := range fields {
		switch canonicalType(f.Type) {
		case "INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC", "BOOL", "STRING", "BYTES", "TIMESTAMP",
			"DATE", "DATETIME", "TIME", "JSON", "GEOGRAPHY":
		case "RECORD":
			if len(f.Fields) == 0 {
				return fmt.Errorf("Field %s%s is type RECORD but has no schema", prefix, f.Name)
			}
			if err := checkSchema(f.Fields, prefix+f.Name+"."); err != nil {
				return err
			}
		default:
			return fmt.Errorf("Invalid field type %q for field %s%s", f.Type, prefix, f.Name)
		}
	}
	return nil
}

// toBQFields converts a client schema to the REST one.
func toBQFields(schema bigquery.Schema) []*bq.TableFieldSchema {
	out := make([]*bq.TableFieldSchema, len(schema))
	for i, f := range schema {
		mode := "NULLABLE"
		switch {
		case f.Repeated:
			mode = "REPEATED"
		case f.Required:
			mode = "REQUIRED"
		}
		out[i] = &bq.TableFieldSchema{Name: f.Name, Type: string(f.Type), Mode: mode, Description: f.Description, Fields: toBQFields(f.Schema)}
	}
	return out
}

// lookupTable returns the table or a notFound error. Callers hold s.mu.
func (s *Server) lookupTable(project, dataset, tbl string) (*table, error) {
	t, ok := s.tables[tableKey(project, dataset, tbl)]
	if !ok {
		return nil, &apiError{http.StatusNotFound, "notFound", fmt.Sprintf("Not found: Table %s", tableKey(project, dataset, tbl))}
	}
	return t, nil
}

// RowError is one rejected row of a write: its index in the call and why.
type RowError struct {
	Index  int
	Reason string
}

// RowErrors is the error of a write with rejected rows. Nothing of it was
// stored.
type RowErrors []RowError

func (e RowErrors) Error() string {
	parts := make([]string, len(e))
	for i, r := range e {
		parts[i] = fmt.Sprintf("row %d: %s", r.Index, r.Reason)
	}
	return "bqtest: rows rejected: " + strings.Join(parts, "; ")
}

// InsertRows validates rows against the table schema and stores them (to seed
// data). Values are Go values (see the package doc for the types; strings and
// other numbers convert as in insertAll). When a row is invalid or rejected
// nothing is stored and the error is a RowErrors. Injected failures do not
// apply.
func (s *Server) InsertRows(project, dataset, tbl string, rows ...map[string]any) error {
	return s.write(project, dataset, tbl, rows, encJSON)
}

// write validates rows, applies RejectRows and stores them all or none.
func (s *Server) write(project, dataset, tbl string, rows []map[string]any, enc encoding) error {
	s.mu.Lock()
	t, err := s.lookupTable(project, dataset, tbl)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	fields, reject := t.meta.Schema.Fields, s.reject
	s.mu.Unlock()

	stored := make([]map[string]any, len(rows))
	var errs RowErrors
	for i, r := range rows {
		cv, err := convertRow(fields, r, enc, "")
		if err == nil && reject != nil {
			if reason := reject(cv); reason != "" {
				err = errors.New(reason)
			}
		}
		if err != nil {
			errs = append(errs, RowError{Index: i, Reason: err.Error()})
			continue
		}
		stored[i] = cv
	}
	if len(errs) > 0 {
		s.count(func(st *Stats) { st.RejectedRows += len(errs) })
		return errs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, err = s.lookupTable(project, dataset, tbl); err != nil {
		return err
	}
	t.rows = append(t.rows, stored...)
	return nil
}

// Rows returns the rows stored in a table, in the order they were written
// (see the package doc for the value types).
func (s *Server) Rows(project, dataset, tbl string) ([]map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTable(project, dataset, tbl)
	if err != nil {
		return nil, fmt.Errorf("bqtest: %w", err)
	}
	return append([]map[string]any(nil), t.rows...), nil
}

// Table returns a copy of a table's metadata as tables.get returns it.
func (s *Server) Table(project, dataset, tbl string) (*bq.Table, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTable(project, dataset, tbl)
	if err != nil {
		return nil, fmt.Errorf("bqtest: %w", err)
	}
	return t.snapshot(), nil
}

// snapshot copies the metadata with the current row count. Callers hold s.mu.
func (t *table) snapshot() *bq.Table {
	m := *t.meta
	m.NumRows = uint64(len(t.rows))
	return &m
}
