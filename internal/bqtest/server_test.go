package bqtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/mqttbeam/mqttbeam/internal/bqtest"
)

const project, dataset, tableID = "proj", "ds", "readings"

var schema = bigquery.Schema{
	{Name: "device_id", Type: bigquery.StringFieldType, Required: true},
	{Name: "value", Type: bigquery.FloatFieldType},
	{Name: "count", Type: bigquery.IntegerFieldType},
	{Name: "ts", Type: bigquery.TimestampFieldType},
	{Name: "tags", Type: bigquery.StringFieldType, Repeated: true},
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func restClient(t *testing.T, s *bqtest.Server) *bigquery.Client {
	c, err := bigquery.NewClient(ctxT(t), project, s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// writer opens a default-stream writer on the table with the descriptor of schema.
func writer(t *testing.T, s *bqtest.Server, sch bigquery.Schema) (*managedwriter.ManagedStream, protoreflect.MessageDescriptor) {
	ctx := ctxT(t)
	mc, err := managedwriter.NewClient(ctx, project, s.StorageClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	ss, err := adapt.BQSchemaToStorageTableSchema(sch)
	if err != nil {
		t.Fatal(err)
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(ss, "root")
	if err != nil {
		t.Fatal(err)
	}
	md := d.(protoreflect.MessageDescriptor)
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mc.NewManagedStream(ctx,
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(project, dataset, tableID)),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithSchemaDescriptor(dp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	// Rebuild the normalized descriptor so encoded rows match what was sent.
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{Name: proto.String("t.proto"), Syntax: proto.String("proto2"), MessageType: []*descriptorpb.DescriptorProto{dp}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ms, fd.Messages().Get(0)
}

func encode(t *testing.T, md protoreflect.MessageDescriptor, row map[string]any) []byte {
	m := dynamicpb.NewMessage(md)
	for k, v := range row {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			t.Fatalf("no field %s", k)
		}
		if l, ok := v.([]string); ok {
			list := m.Mutable(fd).List()
			for _, s := range l {
				list.Append(protoreflect.ValueOfString(s))
			}
			continue
		}
		m.Set(fd, protoreflect.ValueOf(v))
	}
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRESTTablesAndRead(t *testing.T) {
	s := bqtest.New(t)
	c := restClient(t, s)
	ctx := ctxT(t)
	ds := c.Dataset(dataset)
	if err := ds.Create(ctx, nil); err != nil {
		t.Fatalf("create dataset: %v", err)
	}
	tbl := ds.Table(tableID)
	err := tbl.Create(ctx, &bigquery.TableMetadata{
		Schema:           schema,
		TimePartitioning: &bigquery.TimePartitioning{Field: "ts", Type: bigquery.DayPartitioningType},
		Clustering:       &bigquery.Clustering{Fields: []string{"device_id"}},
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	md, err := tbl.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.TimePartitioning == nil || md.TimePartitioning.Field != "ts" || md.Clustering == nil || md.Clustering.Fields[0] != "device_id" {
		t.Errorf("partitioning/clustering not kept: %+v %+v", md.TimePartitioning, md.Clustering)
	}
	if len(md.Schema) != len(schema) || !md.Schema[0].Required {
		t.Errorf("schema = %+v", md.Schema)
	}
	// Schema patch: adding a NULLABLE field works, dropping one fails.
	if _, err := tbl.Update(ctx, bigquery.TableMetadataToUpdate{Schema: append(md.Schema, &bigquery.FieldSchema{Name: "extra", Type: bigquery.StringFieldType})}, ""); err != nil {
		t.Errorf("add field: %v", err)
	}
	if _, err := tbl.Update(ctx, bigquery.TableMetadataToUpdate{Schema: md.Schema[:1]}, ""); err == nil || !strings.Contains(err.Error(), "missing in new schema") {
		t.Errorf("drop field: err = %v", err)
	}

	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	ins := tbl.Inserter()
	if err := ins.Put(ctx, []*bigquery.ValuesSaver{{Schema: schema, Row: []bigquery.Value{"d1", 1.5, int64(7), ts, []string{"a", "b"}}}}); err != nil {
		t.Fatalf("insertAll: %v", err)
	}
	err = ins.Put(ctx, []*bigquery.ValuesSaver{{Schema: schema, Row: []bigquery.Value{nil, 1.5, nil, nil, nil}}})
	var multi bigquery.PutMultiError
	if !errors.As(err, &multi) || !strings.Contains(multi.Error(), "Missing required field: device_id") {
		t.Errorf("missing REQUIRED via insertAll: err = %v", err)
	}

	it := tbl.Read(ctx)
	var got []map[string]bigquery.Value
	for {
		var row map[string]bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got = append(got, row)
	}
	if len(got) != 1 || got[0]["device_id"] != "d1" || got[0]["value"] != 1.5 || got[0]["count"] != int64(7) || !got[0]["ts"].(time.Time).Equal(ts) || len(got[0]["tags"].([]bigquery.Value)) != 2 {
		t.Errorf("read rows = %v", got)
	}
}

func TestStorageWrite(t *testing.T) {
	s := bqtest.New(t)
	if err := s.CreateTable(project, dataset, tableID, schema); err != nil {
		t.Fatal(err)
	}
	ms, md := writer(t, s, schema)
	ctx := ctxT(t)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	append1 := func(rows ...map[string]any) error {
		data := make([][]byte, len(rows))
		for i, r := range rows {
			data[i] = encode(t, md, r)
		}
		res, err := ms.AppendRows(ctx, data)
		if err != nil {
			return err
		}
		_, err = res.GetResult(ctx)
		return err
	}
	if err := append1(map[string]any{"device_id": "d1", "value": 2.5, "ts": ts.UnixMicro(), "tags": []string{"x"}}, map[string]any{"device_id": "d2", "count": int64(3)}); err != nil {
		t.Fatalf("append: %v", err)
	}

	// A missing REQUIRED field rejects the request with a row error.
	err := append1(map[string]any{"device_id": "ok"}, map[string]any{"value": 1.0})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument {
		t.Errorf("missing REQUIRED: err = %v", err)
	}
	res, _ := ms.AppendRows(ctx, [][]byte{encode(t, md, map[string]any{"value": 1.0})})
	full, _ := res.FullResponse(ctx)
	if re := full.GetRowErrors(); len(re) != 1 || re[0].GetIndex() != 0 || !strings.Contains(re[0].GetMessage(), "Missing required field: device_id") {
		t.Errorf("row errors = %v", re)
	}

	// Per-row rejection.
	s.RejectRows(func(row map[string]any) string {
		if row["device_id"] == "bad" {
			return "device is banned"
		}
		return ""
	})
	res, _ = ms.AppendRows(ctx, [][]byte{encode(t, md, map[string]any{"device_id": "good"}), encode(t, md, map[string]any{"device_id": "bad"})})
	full, _ = res.FullResponse(ctx)
	if re := full.GetRowErrors(); len(re) != 1 || re[0].GetIndex() != 1 || re[0].GetMessage() != "device is banned" {
		t.Errorf("rejected row errors = %v", re)
	}
	s.RejectRows(nil)

	// Injected 503s fail whole requests with Unavailable, then writes succeed.
	if err := s.FailNext(2, 503); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := append1(map[string]any{"device_id": "lost"}); status.Code(err) != codes.Unavailable {
			t.Errorf("injected failure %d: err = %v", i, err)
		}
	}
	if err := append1(map[string]any{"device_id": "d3"}); err != nil {
		t.Errorf("after failures: %v", err)
	}

	if st := s.Stats(); st.Injected != 2 || st.RejectedRows != 3 || st.Appends != 7 {
		t.Errorf("stats = %+v, want 2 injected, 3 rejected rows, 7 appends", st)
	}
	rows, err := s.Rows(project, dataset, tableID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r["device_id"].(string))
	}
	if strings.Join(ids, ",") != "d1,d2,d3" {
		t.Fatalf("stored devices = %v", ids)
	}
	if !rows[0]["ts"].(time.Time).Equal(ts) || rows[0]["value"] != 2.5 || rows[1]["count"] != int64(3) || len(rows[0]["tags"].([]any)) != 1 {
		t.Errorf("stored rows = %v", rows)
	}
}

func TestStorageWriteSchemaErrors(t *testing.T) {
	s := bqtest.New(t)
	if err := s.CreateTable(project, dataset, tableID, schema); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for name, tc := range map[string]struct {
		sch  bigquery.Schema
		row  map[string]any
		want string
	}{
		"wrong type":    {bigquery.Schema{{Name: "device_id", Type: bigquery.StringFieldType}, {Name: "count", Type: bigquery.StringFieldType}}, map[string]any{"device_id": "d", "count": "x"}, "proto field mismatched with BigQuery field at count"},
		"unknown field": {bigquery.Schema{{Name: "device_id", Type: bigquery.StringFieldType}, {Name: "colour", Type: bigquery.StringFieldType}}, map[string]any{"device_id": "d", "colour": "red"}, "extra fields: 'colour'"},
	} {
		t.Run(name, func(t *testing.T) {
			ms, md := writer(t, s, tc.sch)
			res, err := ms.AppendRows(ctx, [][]byte{encode(t, md, tc.row)})
			if err == nil {
				_, err = res.GetResult(ctx)
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want InvalidArgument with %q", err, tc.want)
			}
		})
	}
	if rows, _ := s.Rows(project, dataset, tableID); len(rows) != 0 {
		t.Errorf("rows stored: %v", rows)
	}
}

func TestInsertRowsValidation(t *testing.T) {
	s := bqtest.New(t)
	full := bigquery.Schema{
		{Name: "i", Type: bigquery.IntegerFieldType}, {Name: "f", Type: bigquery.FloatFieldType},
		{Name: "n", Type: bigquery.NumericFieldType}, {Name: "b", Type: bigquery.BooleanFieldType},
		{Name: "s", Type: bigquery.StringFieldType}, {Name: "by", Type: bigquery.BytesFieldType},
		{Name: "ts", Type: bigquery.TimestampFieldType}, {Name: "d", Type: bigquery.DateFieldType},
		{Name: "dt", Type: bigquery.DateTimeFieldType}, {Name: "j", Type: bigquery.JSONFieldType},
		{Name: "r", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{{Name: "x", Type: bigquery.IntegerFieldType, Required: true}}},
		{Name: "rep", Type: bigquery.IntegerFieldType, Repeated: true},
	}
	if err := s.CreateTable(project, dataset, "all", full); err != nil {
		t.Fatal(err)
	}
	good := map[string]any{"i": "42", "f": 1.25, "n": "10.50", "b": true, "s": "x", "by": []byte{1, 2}, "ts": "2026-01-02T03:04:05Z",
		"d": "2026-01-02", "dt": "2026-01-02 03:04:05", "j": `{"a":1}`, "r": map[string]any{"x": 1}, "rep": []any{1, 2}}
	if err := s.InsertRows(project, dataset, "all", good); err != nil {
		t.Fatalf("good row: %v", err)
	}
	rows, _ := s.Rows(project, dataset, "all")
	if r := rows[0]; r["i"] != int64(42) || r["n"] != "10.5" || r["r"].(map[string]any)["x"] != int64(1) || r["d"].(interface{ String() string }).String() != "2026-01-02" {
		t.Errorf("stored = %v", r)
	}
	for _, tc := range []struct {
		row  map[string]any
		want string
	}{
		{map[string]any{"i": "abc"}, "Cannot convert value to INT64 for field i"},
		{map[string]any{"j": "{not json"}, "Cannot convert value to JSON for field j"},
		{map[string]any{"d": "2026-13-01"}, "Cannot convert value to DATE for field d"},
		{map[string]any{"r": map[string]any{}}, "Missing required field: r.x."},
		{map[string]any{"nope": 1}, "no such field: nope."},
		{map[string]any{"rep": 3}, "Field rep is REPEATED"},
	} {
		err := s.InsertRows(project, dataset, "all", tc.row)
		var re bqtest.RowErrors
		if !errors.As(err, &re) || !strings.Contains(re[0].Reason, tc.want) {
			t.Errorf("InsertRows(%v) = %v, want %q", tc.row, err, tc.want)
		}
	}
	if err := s.InsertRows(project, dataset, "missing", good); err == nil || !strings.Contains(err.Error(), "Not found: Table proj:ds.missing") {
		t.Errorf("missing table: %v", err)
	}
	if err := s.FailNext(1, 418); err == nil {
		t.Error("FailNext(1, 418) accepted")
	}
}
