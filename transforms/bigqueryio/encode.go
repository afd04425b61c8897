package bigqueryio

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"cloud.google.com/go/civil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// codec turns rows into the proto messages of the Storage Write API and
// back into JSON for dead letters. Civil types and NUMERIC travel as strings,
// which the API accepts, TIMESTAMP as int64 microseconds.
type codec struct {
	schema bigquery.Schema
	desc   protoreflect.MessageDescriptor
	dp     *descriptorpb.DescriptorProto // normalized, for the writer
}

// stringTypes are the column types sent as proto strings.
var stringTypes = []storagepb.TableFieldSchema_Type{
	storagepb.TableFieldSchema_NUMERIC, storagepb.TableFieldSchema_BIGNUMERIC,
	storagepb.TableFieldSchema_DATE, storagepb.TableFieldSchema_DATETIME, storagepb.TableFieldSchema_TIME,
}

func newCodec(schema bigquery.Schema) (*codec, error) {
	ts, err := adapt.BQSchemaToStorageTableSchema(schema)
	if err != nil {
		return nil, fmt.Errorf("bigqueryio: convert schema: %w", err)
	}
	var opts []adapt.ProtoConversionOption
	for _, t := range stringTypes {
		opts = append(opts, adapt.WithProtoMapping(adapt.ProtoMapping{FieldType: t, Type: descriptorpb.FieldDescriptorProto_TYPE_STRING}))
	}
	d, err := adapt.StorageSchemaToProtoDescriptorWithOptions(ts, "root", opts...)
	if err != nil {
		return nil, fmt.Errorf("bigqueryio: schema to proto: %w", err)
	}
	dp, err := adapt.NormalizeDescriptor(d.(protoreflect.MessageDescriptor))
	if err != nil {
		return nil, fmt.Errorf("bigqueryio: normalize descriptor: %w", err)
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("bigqueryio_row.proto"), Syntax: proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{dp},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("bigqueryio: build descriptor: %w", err)
	}
	return &codec{schema: schema, desc: fd.Messages().Get(0), dp: dp}, nil
}

// values returns a row's column values: a struct through bigquery.StructSaver,
// a map as it is.
func (c *codec) values(row any) (map[string]bigquery.Value, error) {
	switch r := row.(type) {
	case Row:
		dec := json.NewDecoder(strings.NewReader(r.JSON))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("row is not a JSON object: %w", err)
		}
		return toValues(m), nil
	case map[string]bigquery.Value:
		return r, nil
	case bigquery.ValueSaver:
		m, _, err := r.Save()
		return m, err
	}
	if t := reflect.TypeOf(row); t == nil || (t.Kind() != reflect.Struct && !(t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct)) {
		return nil, fmt.Errorf("row of type %T is neither a struct nor a map[string]any", row)
	}
	m, _, err := (&bigquery.StructSaver{Struct: row, Schema: c.schema}).Save()
	return m, err
}

// toValues converts decoded JSON objects (also nested ones) to the map type
// of bigquery.ValueSaver.
func toValues(m map[string]any) map[string]bigquery.Value {
	out := make(map[string]bigquery.Value, len(m))
	for k, v := range m {
		out[k] = toValue(v)
	}
	return out
}

func toValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return toValues(x)
	case []any:
		items := make([]any, len(x))
		for i, it := range x {
			items[i] = toValue(it)
		}
		return items
	}
	return v
}

// encode serializes a row.
func (c *codec) encode(row any) ([]byte, error) {
	vals, err := c.values(row)
	if err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(c.desc)
	if err := fill(m, c.schema, vals); err != nil {
		return nil, err
	}
	return proto.MarshalOptions{AllowPartial: true}.Marshal(m)
}

func fieldByColumn(md protoreflect.MessageDescriptor, column string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if columnName(fields.Get(i)) == column {
			return fields.Get(i)
		}
	}
	return nil
}

// columnName is the column a proto field writes (adapt annotates names that
// are not proto identifiers).
func columnName(fd protoreflect.FieldDescriptor) string {
	if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts != nil && proto.HasExtension(opts, storagepb.E_ColumnName) {
		return proto.GetExtension(opts, storagepb.E_ColumnName).(string)
	}
	return string(fd.Name())
}

func fill(m *dynamicpb.Message, schema bigquery.Schema, vals map[string]bigquery.Value) error {
	for _, f := range schema {
		v, ok := vals[f.Name]
		if !ok || v == nil {
			continue
		}
		fd := fieldByColumn(m.Descriptor(), f.Name)
		if fd == nil {
			return fmt.Errorf("field %q: not in the writer schema", f.Name)
		}
		if f.Repeated {
			items := reflect.ValueOf(v)
			if items.Kind() != reflect.Slice {
				return fmt.Errorf("field %q: repeated, got %T", f.Name, v)
			}
			list := m.Mutable(fd).List()
			for i := 0; i < items.Len(); i++ {
				pv, err := protoValue(m, fd, f, items.Index(i).Interface())
				if err != nil {
					return fmt.Errorf("field %q[%d]: %w", f.Name, i, err)
				}
				list.Append(pv)
			}
			continue
		}
		pv, err := protoValue(m, fd, f, v)
		if err != nil {
			return fmt.Errorf("field %q: %w", f.Name, err)
		}
		m.Set(fd, pv)
	}
	return nil
}

func protoValue(parent *dynamicpb.Message, fd protoreflect.FieldDescriptor, f *bigquery.FieldSchema, v any) (protoreflect.Value, error) {
	bad := func() (protoreflect.Value, error) {
		return protoreflect.Value{}, fmt.Errorf("cannot write %T as %s", v, f.Type)
	}
	switch f.Type {
	case bigquery.RecordFieldType:
		sub, ok := v.(map[string]bigquery.Value)
		if !ok {
			return bad()
		}
		m := dynamicpb.NewMessage(fd.Message())
		if err := fill(m, f.Schema, sub); err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfMessage(m), nil
	case bigquery.TimestampFieldType:
		switch t := v.(type) {
		case time.Time:
			return protoreflect.ValueOfInt64(t.UnixMicro()), nil
		case string:
			parsed, err := time.Parse(time.RFC3339Nano, t)
			if err != nil {
				return protoreflect.Value{}, fmt.Errorf("TIMESTAMP must be RFC 3339: %w", err)
			}
			return protoreflect.ValueOfInt64(parsed.UnixMicro()), nil
		}
	case bigquery.DateFieldType:
		if d, ok := v.(civil.Date); ok {
			return protoreflect.ValueOfString(d.String()), nil
		}
	case bigquery.DateTimeFieldType:
		if d, ok := v.(civil.DateTime); ok {
			return protoreflect.ValueOfString(bigquery.CivilDateTimeString(d)), nil
		}
	case bigquery.TimeFieldType:
		if t, ok := v.(civil.Time); ok {
			return protoreflect.ValueOfString(bigquery.CivilTimeString(t)), nil
		}
	case bigquery.NumericFieldType, bigquery.BigNumericFieldType:
		if r, ok := v.(*big.Rat); ok {
			return protoreflect.ValueOfString(bigquery.BigNumericString(r)), nil
		}
	case bigquery.JSONFieldType:
		if _, isString := v.(string); !isString {
			b, err := json.Marshal(v)
			if err != nil {
				return protoreflect.Value{}, err
			}
			return protoreflect.ValueOfString(string(b)), nil
		}
	}
	return scalar(fd, v)
}

// scalar converts a Go value to the kind of fd.
func scalar(fd protoreflect.FieldDescriptor, v any) (protoreflect.Value, error) {
	if n, ok := v.(json.Number); ok {
		switch fd.Kind() {
		case protoreflect.Int64Kind:
			i, err := n.Int64()
			if err != nil {
				return protoreflect.Value{}, fmt.Errorf("%s is not an INT64", n)
			}
			return protoreflect.ValueOfInt64(i), nil
		case protoreflect.DoubleKind:
			f, err := n.Float64()
			if err != nil {
				return protoreflect.Value{}, fmt.Errorf("%s is not a FLOAT64", n)
			}
			return protoreflect.ValueOfFloat64(f), nil
		case protoreflect.StringKind: // NUMERIC
			return protoreflect.ValueOfString(n.String()), nil
		}
	}
	rv := reflect.ValueOf(v)
	switch fd.Kind() {
	case protoreflect.Int64Kind:
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return protoreflect.ValueOfInt64(rv.Int()), nil
		case reflect.Uint8, reflect.Uint16, reflect.Uint32:
			return protoreflect.ValueOfInt64(int64(rv.Uint())), nil
		}
	case protoreflect.DoubleKind:
		switch rv.Kind() {
		case reflect.Float32, reflect.Float64:
			return protoreflect.ValueOfFloat64(rv.Float()), nil
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return protoreflect.ValueOfFloat64(float64(rv.Int())), nil
		}
	case protoreflect.BoolKind:
		if rv.Kind() == reflect.Bool {
			return protoreflect.ValueOfBool(rv.Bool()), nil
		}
	case protoreflect.StringKind:
		if rv.Kind() == reflect.String {
			return protoreflect.ValueOfString(rv.String()), nil
		}
	case protoreflect.BytesKind:
		if b, ok := v.([]byte); ok {
			return protoreflect.ValueOfBytes(b), nil
		}
	}
	return protoreflect.Value{}, fmt.Errorf("cannot write %T as proto %s", v, fd.Kind())
}

// json renders a serialized row as JSON for a dead letter: column names,
// numbers as numbers, TIMESTAMP as RFC 3339, BYTES as base64.
func (c *codec) json(row []byte) string {
	m := dynamicpb.NewMessage(c.desc)
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(row, m); err != nil {
		return `"` + base64.StdEncoding.EncodeToString(row) + `"`
	}
	b, err := json.Marshal(messageMap(m, c.schema))
	if err != nil {
		return `"` + base64.StdEncoding.EncodeToString(row) + `"`
	}
	return string(b)
}

func messageMap(m protoreflect.Message, schema bigquery.Schema) map[string]any {
	out := map[string]any{}
	for _, f := range schema {
		fd := fieldByColumn(m.Descriptor(), f.Name)
		if fd == nil || !m.Has(fd) {
			continue
		}
		if fd.IsList() {
			l := m.Get(fd).List()
			items := make([]any, l.Len())
			for i := range items {
				items[i] = jsonValue(f, l.Get(i))
			}
			out[f.Name] = items
			continue
		}
		out[f.Name] = jsonValue(f, m.Get(fd))
	}
	return out
}

func jsonValue(f *bigquery.FieldSchema, v protoreflect.Value) any {
	switch f.Type {
	case bigquery.RecordFieldType:
		return messageMap(v.Message(), f.Schema)
	case bigquery.TimestampFieldType:
		return time.UnixMicro(v.Int()).UTC().Format(time.RFC3339Nano)
	case bigquery.JSONFieldType:
		if json.Valid([]byte(v.String())) {
			return json.RawMessage(v.String())
		}
	}
	return v.Interface()
}
