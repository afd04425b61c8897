package bigqueryio

import (
	"context"
	"reflect"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
)

type row struct {
	DeviceID string `bigquery:"device_id"`
}

// setupWriteFn returns a writeFn set up against srv for table with opts.
func setupWriteFn(t *testing.T, srv *bqtest.Server, tbl string, opts ...Option) (*writeFn, *codec) {
	t.Helper()
	cfg, err := newConfig(append(opts, Endpoint(srv.RESTURL(), srv.GRPCAddr()), CreateIfMissing()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SchemaJSON, err = inferSchema(reflect.TypeOf(row{})); err != nil {
		t.Fatal(err)
	}
	f := &writeFn{Table: tbl, Cfg: cfg}
	if err := f.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	schema, err := bigquery.InferSchema(row{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// A batch whose oldest row has waited FlushInterval is sent with the next
// row, before the bundle ends; the rest are sent when it finishes. Teardown
// releases the worker's clients.
func TestWriteFnFlushesByTimeWithinBundle(t *testing.T) {
	srv := bqtest.New(t)
	ctx := context.Background()
	f, c := setupWriteFn(t, srv, "p1:ds.t", FlushInterval(time.Millisecond), BatchSize(1000))
	noDead := func(dl DeadLetter) { t.Errorf("dead letter %+v", dl) }
	count := func() int {
		rows, err := srv.Rows("p1", "ds", "t")
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	enc := func(id string) []byte {
		b, err := c.encode(row{DeviceID: id})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	if err := f.StartBundle(ctx, noDead); err != nil {
		t.Fatal(err)
	}
	if err := f.ProcessElement(ctx, enc("a"), noDead); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 2*time.Millisecond { // let the first row's FlushInterval pass
		time.Sleep(time.Millisecond)
	}
	if err := f.ProcessElement(ctx, enc("b"), noDead); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d rows stored before the bundle finished, want 2 (flushed by time)", n)
	}
	if err := f.ProcessElement(ctx, enc("c"), noDead); err != nil {
		t.Fatal(err)
	}
	if err := f.FinishBundle(ctx, noDead); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d rows stored after FinishBundle, want 3", n)
	}
	if err := f.Teardown(); err != nil {
		t.Fatal(err)
	}
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clientMap[clientKey(f.Cfg, "p1")]; ok {
		t.Errorf("clients not released: %+v", c)
	}
}

func TestParseTable(t *testing.T) {
	for in, want := range map[string]tableRef{
		"my-project:telemetry.readings": {"my-project", "telemetry", "readings"},
		"example.com:proj:ds.t_1":       {"example.com:proj", "ds", "t_1"},
		"p:d.table-with-dash":           {"p", "d", "table-with-dash"},
	} {
		got, err := parseTable(in)
		if err != nil || got != want {
			t.Errorf("parseTable(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ds.t", "p:ds", "p:ds.", "P:ds.t", "p:d s.t", "p.ds.t"} {
		if _, err := parseTable(in); err == nil {
			t.Errorf("parseTable(%q) accepted", in)
		}
	}
}
