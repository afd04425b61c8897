package bqtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	bq "google.golang.org/api/bigquery/v2"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// writeServer serves the Storage Write API: GetWriteStream and AppendRows on
// the default stream of each table.
type writeServer struct {
	storagepb.UnimplementedBigQueryWriteServer
	s *Server
}

// grpcCodes maps injectable HTTP codes to gRPC codes.
var grpcCodes = map[int]codes.Code{
	http.StatusTooManyRequests:     codes.ResourceExhausted,
	http.StatusInternalServerError: codes.Internal,
	http.StatusServiceUnavailable:  codes.Unavailable,
	http.StatusGatewayTimeout:      codes.DeadlineExceeded,
}

// parseStream splits "projects/p/datasets/d/tables/t/streams/_default".
func parseStream(name string) (project, dataset, tbl string, err error) {
	parts := strings.Split(name, "/")
	if len(parts) != 8 || parts[0] != "projects" || parts[2] != "datasets" || parts[4] != "tables" || parts[6] != "streams" {
		return "", "", "", status.Errorf(codes.InvalidArgument, "invalid write stream name %q", name)
	}
	if parts[7] != "_default" {
		return "", "", "", status.Errorf(codes.Unimplemented, "bqtest: only the default stream is supported, got %q", name)
	}
	return parts[1], parts[3], parts[5], nil
}

func (w *writeServer) tableSchema(name string) (*bq.Table, error) {
	p, d, t, err := parseStream(name)
	if err != nil {
		return nil, err
	}
	meta, err := w.s.Table(p, d, t)
	if err != nil {
		return nil, status.Error(codes.NotFound, strings.TrimPrefix(err.Error(), "bqtest: "))
	}
	return meta, nil
}

// GetWriteStream describes a table's default stream.
func (w *writeServer) GetWriteStream(ctx context.Context, req *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	meta, err := w.tableSchema(req.GetName())
	if err != nil {
		return nil, err
	}
	ws := &storagepb.WriteStream{Name: req.GetName(), Type: storagepb.WriteStream_COMMITTED, Location: meta.Location}
	if req.GetView() == storagepb.WriteStreamView_FULL {
		ws.TableSchema = toStorageSchema(meta.Schema.Fields)
	}
	return ws, nil
}

func toStorageSchema(fields []*bq.TableFieldSchema) *storagepb.TableSchema {
	out := &storagepb.TableSchema{}
	for _, f := range fields {
		typ := canonicalType(f.Type)
		switch typ {
		case "FLOAT64":
			typ = "DOUBLE"
		case "RECORD":
			typ = "STRUCT"
		}
		out.Fields = append(out.Fields, &storagepb.TableFieldSchema{
			Name:   f.Name,
			Type:   storagepb.TableFieldSchema_Type(storagepb.TableFieldSchema_Type_value[typ]),
			Mode:   storagepb.TableFieldSchema_Mode(storagepb.TableFieldSchema_Mode_value[mode(f)]),
			Fields: toStorageSchema(f.Fields).Fields,
		})
	}
	return out
}

// AppendRows receives rows on a bidirectional stream. The first request of a
// connection names the stream and carries the writer schema; later ones may
// omit them.
func (w *writeServer) AppendRows(stream storagepb.BigQueryWrite_AppendRowsServer) error {
	var streamName string
	var desc protoreflect.MessageDescriptor
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n := req.GetWriteStream(); n != "" {
			streamName = n
		}
		rows := req.GetProtoRows()
		if ps := rows.GetWriterSchema().GetProtoDescriptor(); ps != nil {
			if desc, err = buildDescriptor(ps); err != nil {
				return status.Errorf(codes.InvalidArgument, "Invalid proto schema: %v", err)
			}
		}
		resp := w.append(streamName, desc, rows.GetRows().GetSerializedRows())
		resp.WriteStream = streamName
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func buildDescriptor(dp *descriptorpb.DescriptorProto) (protoreflect.MessageDescriptor, error) {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("bqtest_writer_schema.proto"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{dp},
	}, nil)
	if err != nil {
		return nil, err
	}
	return fd.Messages().Get(0), nil
}

func errorResponse(code codes.Code, msg string) *storagepb.AppendRowsResponse {
	return &storagepb.AppendRowsResponse{Response: &storagepb.AppendRowsResponse_Error{Error: &spb.Status{Code: int32(code), Message: msg}}}
}

// append handles one AppendRows request. Errors travel in the response, as
// BigQuery reports them, so the connection stays open.
func (w *writeServer) append(streamName string, desc protoreflect.MessageDescriptor, serialized [][]byte) *storagepb.AppendRowsResponse {
	if streamName == "" {
		return errorResponse(codes.InvalidArgument, "write_stream must be set in the first request of a connection")
	}
	if desc == nil {
		return errorResponse(codes.InvalidArgument, "writer_schema must be set in the first request of a connection")
	}
	w.s.count(func(st *Stats) { st.Appends++ })
	if code := w.s.takeFailure(); code != 0 {
		msg := injected(code).Message
		if code == http.StatusTooManyRequests {
			msg = "Exceeds 'AppendRows throughput' quota (bqtest: injected failure)"
		}
		return errorResponse(grpcCodes[code], msg)
	}
	meta, err := w.tableSchema(streamName)
	if err != nil {
		st, _ := status.FromError(err)
		return &storagepb.AppendRowsResponse{Response: &storagepb.AppendRowsResponse_Error{Error: st.Proto()}}
	}
	if err := matchDescriptor(meta.Schema.Fields, desc, ""); err != nil {
		return errorResponse(codes.InvalidArgument, err.Error()+" Entity: "+streamName)
	}
	rows := make([]map[string]any, len(serialized))
	var rowErrs []*storagepb.RowError
	for i, b := range serialized {
		m := dynamicpb.NewMessage(desc)
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, m); err != nil {
			rowErrs = append(rowErrs, rowError(i, "Could not parse the serialized row: "+err.Error()))
			continue
		}
		if len(m.GetUnknown()) > 0 {
			rowErrs = append(rowErrs, rowError(i, "The serialized row has fields unknown to the writer schema."))
			continue
		}
		rows[i] = messageToMap(m)
	}
	if len(rowErrs) == 0 {
		p, d, t, _ := parseStream(streamName)
		var re RowErrors
		err := w.s.write(p, d, t, rows, encProto)
		switch {
		case errors.As(err, &re):
			for _, r := range re {
				rowErrs = append(rowErrs, rowError(r.Index, r.Reason))
			}
		case err != nil:
			return errorResponse(codes.Internal, err.Error())
		default:
			return &storagepb.AppendRowsResponse{Response: &storagepb.AppendRowsResponse_AppendResult_{AppendResult: &storagepb.AppendRowsResponse_AppendResult{}}}
		}
	}
	resp := errorResponse(codes.InvalidArgument, "Errors found while processing rows. Please refer to the row_errors field for details. Entity: "+streamName)
	resp.RowErrors = rowErrs
	return resp
}

func rowError(i int, msg string) *storagepb.RowError {
	return &storagepb.RowError{Index: int64(i), Code: storagepb.RowError_FIELDS_ERROR, Message: msg}
}

// protoKinds lists the proto kinds the Storage Write API accepts per column type.
var protoKinds = map[string][]protoreflect.Kind{
	"INT64":      {protoreflect.Int64Kind, protoreflect.Int32Kind, protoreflect.Sint64Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind, protoreflect.Sfixed64Kind, protoreflect.Sfixed32Kind, protoreflect.Fixed32Kind, protoreflect.EnumKind},
	"FLOAT64":    {protoreflect.DoubleKind, protoreflect.FloatKind},
	"NUMERIC":    {protoreflect.StringKind, protoreflect.Int64Kind, protoreflect.Int32Kind, protoreflect.DoubleKind},
	"BIGNUMERIC": {protoreflect.StringKind, protoreflect.Int64Kind, protoreflect.Int32Kind, protoreflect.DoubleKind},
	"BOOL":       {protoreflect.BoolKind},
	"STRING":     {protoreflect.StringKind, protoreflect.EnumKind},
	"JSON":       {protoreflect.StringKind},
	"GEOGRAPHY":  {protoreflect.StringKind},
	"BYTES":      {protoreflect.BytesKind},
	"TIMESTAMP":  {protoreflect.Int64Kind, protoreflect.StringKind},
	"DATE":       {protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.StringKind},
	"DATETIME":   {protoreflect.Int64Kind, protoreflect.StringKind},
	"TIME":       {protoreflect.Int64Kind, protoreflect.StringKind},
	"RECORD":     {protoreflect.MessageKind, protoreflect.GroupKind},
}

// matchDescriptor checks the writer schema against the table schema, with
// the request-level errors BigQuery gives.
func matchDescriptor(fields []*bq.TableFieldSchema, desc protoreflect.MessageDescriptor, prefix string) error {
	byName := make(map[string]*bq.TableFieldSchema, len(fields))
	for _, f := range fields {
		byName[strings.ToLower(f.Name)] = f
	}
	var extra []string
	for i := 0; i < desc.Fields().Len(); i++ {
		fd := desc.Fields().Get(i)
		name := columnName(fd)
		f, ok := byName[strings.ToLower(name)]
		if !ok {
			extra = append(extra, prefix+name)
			continue
		}
		typ := canonicalType(f.Type)
		if !kindAllowed(typ, fd.Kind()) {
			return fmt.Errorf("The proto field mismatched with BigQuery field at %s%s, the proto field type %s, BigQuery field type %s.", prefix, f.Name, fd.Kind(), typ)
		}
		if (mode(f) == "REPEATED") != fd.IsList() {
			return fmt.Errorf("The proto field mismatched with BigQuery field at %s%s: repeated in one schema but not in the other.", prefix, f.Name)
		}
		if typ == "RECORD" {
			if err := matchDescriptor(f.Fields, fd.Message(), prefix+f.Name+"."); err != nil {
				return err
			}
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("Input schema has more fields than BigQuery schema, extra fields: '%s'.", strings.Join(extra, ","))
	}
	return nil
}

func kindAllowed(typ string, k protoreflect.Kind) bool {
	for _, a := range protoKinds[typ] {
		if a == k {
			return true
		}
	}
	return false
}

// columnName is the column a proto field writes: its name, or the column
// name annotation adapt adds for names that are not proto identifiers.
func columnName(fd protoreflect.FieldDescriptor) string {
	if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts != nil && proto.HasExtension(opts, storagepb.E_ColumnName) {
		if n, ok := proto.GetExtension(opts, storagepb.E_ColumnName).(string); ok && n != "" {
			return n
		}
	}
	return string(fd.Name())
}

// messageToMap turns a decoded row into Go values keyed by column name, for
// convertRow with encProto.
func messageToMap(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.IsList() {
			l := v.List()
			items := make([]any, l.Len())
			for i := range items {
				items[i] = protoValue(fd, l.Get(i))
			}
			out[columnName(fd)] = items
			return true
		}
		out[columnName(fd)] = protoValue(fd, v)
		return true
	})
	return out
}

func protoValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageToMap(v.Message())
	case protoreflect.EnumKind:
		return int64(v.Enum())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return int64(v.Uint())
	case protoreflect.FloatKind:
		return v.Float()
	}
	return v.Interface()
}
