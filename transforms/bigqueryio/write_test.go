package bigqueryio_test

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
	"github.com/mqttbeam/mqttbeam/transforms/bigqueryio"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

// reading is the row type of the tests.
type reading struct {
	DeviceID  string    `bigquery:"device_id"`
	Value     float64   `bigquery:"value"`
	Count     int64     `bigquery:"count"`
	EventTime time.Time `bigquery:"event_time"`
	Tags      []string  `bigquery:"tags"`
}

func init() {
	beam.RegisterType(reflect.TypeOf((*reading)(nil)).Elem())
	register.Function1x1(isRow3DeadLetter)
	register.Function1x2(toMap)
}

// isRow3DeadLetter checks the dead letter of readings(n)[3], rejected by the server.
func isRow3DeadLetter(dl bigqueryio.DeadLetter) bool {
	return dl.Table == table && dl.Error == "value out of range for device" && !dl.Time.IsZero() &&
		strings.Contains(dl.Row, `"count":3,`) && strings.Contains(dl.Row, `"device_id":"dev-003"`) &&
		strings.Contains(dl.Row, `"event_time":"2026-05-01T12:00:03Z"`)
}

const (
	project = "test-project"
	dataset = "telemetry"
	tableID = "readings"
	table   = project + ":" + dataset + "." + tableID
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func readings(n int) []reading {
	out := make([]reading, n)
	for i := range out {
		out[i] = reading{DeviceID: fmt.Sprintf("dev-%03d", i), Value: float64(i) + 0.5, Count: int64(i), EventTime: t0.Add(time.Duration(i) * time.Second), Tags: []string{"t"}}
	}
	return out
}

func endpoint(srv *bqtest.Server) bigqueryio.Option {
	return bigqueryio.Endpoint(srv.RESTURL(), srv.GRPCAddr())
}

// run runs p on prism and returns the bigqueryio counters.
func run(t *testing.T, p *beam.Pipeline) map[string]int64 {
	t.Helper()
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("pipeline failed: %v", err)
	}
	got := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "bigqueryio" {
			got[c.Name()] += c.Result()
		}
	}
	return got
}

// stored returns the rows in the table, by device id.
func stored(t *testing.T, srv *bqtest.Server) map[string]map[string]any {
	t.Helper()
	rows, err := srv.Rows(project, dataset, tableID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range rows {
		id := r["device_id"].(string)
		if _, dup := out[id]; dup {
			t.Errorf("row %s stored twice", id)
		}
		out[id] = r
	}
	return out
}

func checkAllLanded(t *testing.T, srv *bqtest.Server, want []reading) {
	t.Helper()
	got := stored(t, srv)
	if len(got) != len(want) {
		t.Fatalf("stored %d rows, want %d", len(got), len(want))
	}
	for _, w := range want {
		r, ok := got[w.DeviceID]
		if !ok {
			t.Fatalf("row %s missing", w.DeviceID)
		}
		if r["value"] != w.Value || r["count"] != w.Count || !r["event_time"].(time.Time).Equal(w.EventTime) || !reflect.DeepEqual(r["tags"], []any{"t"}) {
			t.Errorf("row %s = %v, want %+v", w.DeviceID, r, w)
		}
	}
}

func TestWriteCreatesPartitionedTable(t *testing.T) {
	srv := bqtest.New(t)
	want := readings(50)
	p, s := beam.NewPipelineWithRoot()
	dead := bigqueryio.Write(s, table, beam.CreateList(s, want), endpoint(srv),
		bigqueryio.CreateIfMissing(), bigqueryio.PartitionBy("event_time"), bigqueryio.ClusterBy("device_id"),
		bigqueryio.BatchSize(7))
	passert.Empty(s, dead)
	got := run(t, p)
	checkAllLanded(t, srv, want)
	if got["rows_written"] != 50 || got["rows_rejected"] != 0 || got["rows_retried"] != 0 {
		t.Errorf("counters = %v", got)
	}
	md, err := srv.Table(project, dataset, tableID)
	if err != nil {
		t.Fatal(err)
	}
	if md.TimePartitioning == nil || md.TimePartitioning.Field != "event_time" || md.TimePartitioning.Type != "DAY" {
		t.Errorf("time partitioning = %+v", md.TimePartitioning)
	}
	if md.Clustering == nil || !reflect.DeepEqual(md.Clustering.Fields, []string{"device_id"}) {
		t.Errorf("clustering = %+v", md.Clustering)
	}
}

var readingSchema = func() bigquery.Schema {
	s, err := bigquery.InferSchema(reading{})
	if err != nil {
		panic(err)
	}
	return s
}()

func newTable(t *testing.T, opts ...bqtest.Option) *bqtest.Server {
	srv := bqtest.New(t, opts...)
	if err := srv.CreateTable(project, dataset, tableID, readingSchema); err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestWriteRetriesTransientErrors(t *testing.T) {
	for _, code := range []int{503, 429} {
		srv := newTable(t, bqtest.FailFirst(4, code))
		want := readings(20)
		p, s := beam.NewPipelineWithRoot()
		dead := bigqueryio.Write(s, table, beam.CreateList(s, want), endpoint(srv), bigqueryio.BatchSize(5))
		passert.Empty(s, dead)
		got := run(t, p)
		checkAllLanded(t, srv, want)
		if got["rows_written"] != 20 || got["rows_retried"] < 4 {
			t.Errorf("HTTP %d: counters = %v, want 20 written and retries", code, got)
		}
		if st := srv.Stats(); st.Injected != 4 {
			t.Errorf("HTTP %d: %d failures injected, want 4", code, st.Injected)
		}
	}
}

func TestWriteGivesUpAfterRetryTimeout(t *testing.T) {
	srv := newTable(t, bqtest.FailFirst(1000, 503))
	p, s := beam.NewPipelineWithRoot()
	bigqueryio.Write(s, table, beam.CreateList(s, readings(3)), endpoint(srv), bigqueryio.RetryTimeout(300*time.Millisecond))
	_, err := ptest.RunWithMetrics(p)
	if err == nil || !strings.Contains(err.Error(), "gave up retrying") {
		t.Fatalf("err = %v, want the bundle to fail after RetryTimeout", err)
	}
	if len(stored(t, srv)) != 0 {
		t.Error("rows stored despite failures")
	}
}

func TestWriteDeadLettersRejectedRows(t *testing.T) {
	srv := newTable(t)
	srv.RejectRows(func(row map[string]any) string {
		if row["count"] == int64(3) {
			return "value out of range for device"
		}
		return ""
	})
	all := readings(10)
	p, s := beam.NewPipelineWithRoot()
	// One bundle, one batch of 10 rows: the other 9 rows are re-sent.
	dead := bigqueryio.Write(s, table, beam.CreateList(s, all), endpoint(srv), bigqueryio.BatchSize(10), bigqueryio.NoReshuffle(),
		bigqueryio.DeadLetterTable(project+":"+dataset+".dead_letters"))
	passert.Count(s, dead, "dead letters", 1)
	passert.True(s, dead, isRow3DeadLetter)
	got := run(t, p)
	checkAllLanded(t, srv, append(all[:3:3], all[4:]...))
	// The main table got the batch of 10 (rejected as a whole), then the 9
	// others; the dead letter table got the dead letter.
	if st := srv.Stats(); st.Appends != 3 || st.RejectedRows != 1 {
		t.Errorf("server stats = %+v, want 3 appends and 1 rejected row", st)
	}
	if got["rows_written"] != 10 || got["rows_rejected"] != 1 { // 9 rows, then the dead letter into its table
		t.Errorf("counters = %v", got)
	}
	dl, err := srv.Rows(project, dataset, "dead_letters")
	if err != nil || len(dl) != 1 || dl[0]["error"] != "value out of range for device" || dl[0]["table"] != table {
		t.Errorf("dead letter table = %v, %v", dl, err)
	}
}

func TestWriteSchemaMismatch(t *testing.T) {
	srv := bqtest.New(t)
	schema := append(bigquery.Schema{}, readingSchema...)
	schema[2] = &bigquery.FieldSchema{Name: "count", Type: bigquery.StringFieldType}
	if err := srv.CreateTable(project, dataset, tableID, schema); err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	bigqueryio.Write(s, table, beam.CreateList(s, readings(2)), endpoint(srv))
	_, err := ptest.RunWithMetrics(p)
	if err == nil || !strings.Contains(err.Error(), `table test-project:telemetry.readings does not match the rows' schema: field "count": the table has type STRING, the rows INTEGER`) {
		t.Fatalf("err = %v", err)
	}
}

func TestWriteMissingTable(t *testing.T) {
	srv := bqtest.New(t)
	p, s := beam.NewPipelineWithRoot()
	bigqueryio.Write(s, table, beam.CreateList(s, readings(1)), endpoint(srv))
	_, err := ptest.RunWithMetrics(p)
	if err == nil || !strings.Contains(err.Error(), "table test-project:telemetry.readings does not exist (use CreateIfMissing") {
		t.Fatalf("err = %v", err)
	}
}

// A streaming run: the batch size is never reached, so rows land only because
// the batches are flushed by time.
func TestWriteStreamingFlushesByTime(t *testing.T) {
	srv := newTable(t)
	want := readings(5)
	cfg := teststream.NewConfig()
	for i, r := range want {
		if err := cfg.AddElements(int64(i)*1000, r); err != nil {
			t.Fatal(err)
		}
		if err := cfg.AdvanceWatermark(int64(i)*1000 + 1); err != nil {
			t.Fatal(err)
		}
	}
	cfg.AdvanceWatermarkToInfinity()
	p, s := beam.NewPipelineWithRoot()
	dead := bigqueryio.Write(s, table, teststream.Create(s, cfg), endpoint(srv),
		bigqueryio.BatchSize(1000), bigqueryio.FlushInterval(50*time.Millisecond))
	passert.Empty(s, dead)
	got := run(t, p)
	checkAllLanded(t, srv, want)
	if got["rows_written"] != 5 {
		t.Errorf("counters = %v", got)
	}
}

func TestTryWriteValidates(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	rows := beam.CreateList(s, readings(1))
	ints := beam.CreateList(s, []int{1})
	for _, tc := range []struct {
		table string
		rows  beam.PCollection
		opts  []bigqueryio.Option
		want  string
	}{
		{"dataset.table", rows, nil, `table "dataset.table" must be PROJECT:DATASET.TABLE`},
		{table, rows, []bigqueryio.Option{bigqueryio.BatchSize(0)}, "option BatchSize: must be >= 1, got 0"},
		{table, rows, []bigqueryio.Option{bigqueryio.BatchBytes(20 << 20)}, "option BatchBytes"},
		{table, rows, []bigqueryio.Option{bigqueryio.Endpoint("localhost", "x")}, "option Endpoint: restURL must be an absolute URL"},
		{table, rows, []bigqueryio.Option{bigqueryio.PartitionBy("event_time")}, "need CreateIfMissing"},
		{table, rows, []bigqueryio.Option{bigqueryio.DeadLetterTable("nope")}, "option DeadLetterTable"},
		{table, ints, nil, "rows of type int need the Schema option"},
		{table, rows, []bigqueryio.Option{bigqueryio.CreateIfMissing(), bigqueryio.PartitionBy("count")}, `option PartitionBy: column "count" must be a TIMESTAMP`},
		{table, rows, []bigqueryio.Option{bigqueryio.CreateIfMissing(), bigqueryio.ClusterBy("colour")}, `option ClusterBy: column "colour"`},
		{table, rows, []bigqueryio.Option{bigqueryio.ClusterBy("a", "b", "c", "d", "e")}, "option ClusterBy: needs 1 to 4 columns, got 5"},
		{table, rows, []bigqueryio.Option{bigqueryio.RetryTimeout(0)}, "option RetryTimeout: must be > 0"},
		{table, rows, []bigqueryio.Option{bigqueryio.FlushInterval(0)}, "option FlushInterval"},
		{table, rows, []bigqueryio.Option{bigqueryio.Schema(nil)}, "option Schema: must have at least one field"},
		{table, rows, []bigqueryio.Option{nil}, "nil Option"},
		{table, beam.Create(s, bigqueryio.Row{JSON: "{}"}), nil, "rows of type bigqueryio.Row need the Schema option"},
	} {
		_, err := bigqueryio.TryWrite(s, tc.table, tc.rows, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TryWrite(%q, %v) = %v, want %q", tc.table, tc.opts, err, tc.want)
		}
	}
	_ = p
}

// Many batches over many bundles: every row lands exactly once.
func TestWriteManyBatches(t *testing.T) {
	srv := newTable(t)
	want := readings(300)
	p, s := beam.NewPipelineWithRoot()
	bigqueryio.Write(s, table, beam.CreateList(s, want), endpoint(srv), bigqueryio.BatchSize(16))
	got := run(t, p)
	checkAllLanded(t, srv, want)
	ids := make([]string, 0, len(want))
	for id := range stored(t, srv) {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if got["rows_written"] != 300 || len(ids) != 300 {
		t.Errorf("counters = %v, %d ids", got, len(ids))
	}
}

// Rows as maps (bigqueryio.Row) need the Schema option; a row that does not
// fit the schema becomes a dead letter before it is sent.
func TestWriteMaps(t *testing.T) {
	srv := newTable(t)
	p, s := beam.NewPipelineWithRoot()
	rows := beam.ParDo(s, toMap, beam.CreateList(s, []int{0, 1, 2}))
	dead := bigqueryio.Write(s, table, rows, endpoint(srv), bigqueryio.Schema(readingSchema))
	passert.Count(s, dead, "dead letters", 1)
	run(t, p)
	got := stored(t, srv)
	if len(got) != 2 || got["dev-000"]["count"] != int64(0) || got["dev-001"]["value"] != 1.5 || !got["dev-001"]["event_time"].(time.Time).Equal(t0) {
		t.Errorf("stored = %v", got)
	}
}

// toMap makes a map row; row 2 has a string where count needs an integer.
func toMap(i int) (bigqueryio.Row, error) {
	m := map[string]any{"device_id": fmt.Sprintf("dev-%03d", i), "value": float64(i) + 0.5, "count": int64(i), "event_time": t0.Format(time.RFC3339)}
	if i == 2 {
		m["count"] = "two"
	}
	return bigqueryio.MapRow(m)
}
