package bqtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
)

// encoding says how a number means a temporal value: the Storage Write API's
// proto encodings differ from insertAll's JSON ones.
type encoding int

const (
	encJSON  encoding = iota // TIMESTAMP numbers are seconds since the epoch
	encProto                 // TIMESTAMP int64 microseconds, DATE int32 days, DATETIME/TIME packed int64
)

// canonicalType maps legacy and standard SQL type names to one name.
func canonicalType(t string) string {
	switch strings.ToUpper(t) {
	case "INTEGER", "INT64":
		return "INT64"
	case "FLOAT", "FLOAT64":
		return "FLOAT64"
	case "BOOLEAN", "BOOL":
		return "BOOL"
	case "RECORD", "STRUCT":
		return "RECORD"
	default:
		return strings.ToUpper(t)
	}
}

// convertRow validates row against fields and returns the stored form. The
// error reads like BigQuery's row errors.
func convertRow(fields []*bq.TableFieldSchema, row map[string]any, enc encoding, prefix string) (map[string]any, error) {
	known := make(map[string]bool, len(fields))
	out := make(map[string]any, len(row))
	for _, f := range fields {
		known[strings.ToLower(f.Name)] = true
		path := prefix + f.Name
		v, ok := lookup(row, f.Name)
		if !ok || v == nil {
			if strings.EqualFold(f.Mode, "REQUIRED") {
				return nil, fmt.Errorf("Missing required field: %s.", path)
			}
			continue
		}
		cv, err := convertField(f, v, enc, path)
		if err != nil {
			return nil, err
		}
		out[f.Name] = cv
	}
	for name := range row {
		if !known[strings.ToLower(name)] {
			return nil, fmt.Errorf("no such field: %s%s.", prefix, name)
		}
	}
	return out, nil
}

// lookup finds a column case-insensitively, as BigQuery does.
func lookup(row map[string]any, name string) (any, bool) {
	if v, ok := row[name]; ok {
		return v, true
	}
	for k, v := range row {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func convertField(f *bq.TableFieldSchema, v any, enc encoding, path string) (any, error) {
	if !strings.EqualFold(f.Mode, "REPEATED") {
		return convertValue(f, v, enc, path)
	}
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("Field %s is REPEATED: expected an array, got %T.", path, v)
	}
	out := make([]any, 0, len(items))
	for i, it := range items {
		if it == nil {
			return nil, fmt.Errorf("Field %s[%d]: NULL element in an ARRAY.", path, i)
		}
		cv, err := convertValue(f, it, enc, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, cv)
	}
	return out, nil
}

func badValue(path, typ string, v any) error {
	return fmt.Errorf("Cannot convert value to %s for field %s: %v (%T).", typ, path, v, v)
}

func convertValue(f *bq.TableFieldSchema, v any, enc encoding, path string) (any, error) {
	typ := canonicalType(f.Type)
	switch typ {
	case "INT64":
		if i, ok := toInt64(v); ok {
			return i, nil
		}
	case "FLOAT64":
		if x, ok := toFloat64(v); ok {
			return x, nil
		}
	case "NUMERIC", "BIGNUMERIC":
		if r, ok := toRat(v); ok {
			return strings.TrimRight(strings.TrimRight(r.FloatString(38), "0"), "."), nil
		}
	case "BOOL":
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if p, err := strconv.ParseBool(b); err == nil {
				return p, nil
			}
		}
	case "STRING", "GEOGRAPHY":
		if s, ok := v.(string); ok {
			return s, nil
		}
	case "JSON":
		if s, ok := v.(string); ok && json.Valid([]byte(s)) {
			return s, nil
		}
		if _, isString := v.(string); !isString {
			if b, err := json.Marshal(v); err == nil {
				return string(b), nil
			}
		}
	case "BYTES":
		switch b := v.(type) {
		case []byte:
			return append([]byte(nil), b...), nil
		case string:
			if d, err := base64.StdEncoding.DecodeString(b); err == nil {
				return d, nil
			}
		}
	case "TIMESTAMP":
		if t, ok := toTimestamp(v, enc); ok {
			return t, nil
		}
	case "DATE":
		if d, ok := toDate(v, enc); ok {
			return d, nil
		}
	case "DATETIME":
		if d, ok := toDateTime(v, enc); ok {
			return d, nil
		}
	case "TIME":
		if d, ok := toTime(v, enc); ok {
			return d, nil
		}
	case "RECORD":
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		return convertRow(f.Fields, m, enc, path+".")
	default:
		return nil, fmt.Errorf("Field %s has unsupported type %s.", path, f.Type)
	}
	return nil, badValue(path, typ, v)
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float64:
		return int64(x), x == math.Trunc(x) && math.Abs(x) < 1<<63
	case json.Number:
		i, err := strconv.ParseInt(string(x), 10, 64)
		return i, err == nil
	case string:
		i, err := strconv.ParseInt(x, 10, 64)
		return i, err == nil
	}
	return 0, false
}

func toFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	if i, ok := toInt64(v); ok {
		return float64(i), true
	}
	return 0, false
}

func toRat(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case *big.Rat:
		return x, x != nil
	case string:
		return new(big.Rat).SetString(x)
	case json.Number:
		return new(big.Rat).SetString(string(x))
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	}
	if i, ok := toInt64(v); ok {
		return new(big.Rat).SetInt64(i), true
	}
	return nil, false
}

// timestampLayouts are the string forms BigQuery accepts for TIMESTAMP.
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 MST",
}

func toTimestamp(v any, enc encoding) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Truncate(time.Microsecond), true
	case string:
		for _, l := range timestampLayouts {
			if t, err := time.Parse(l, x); err == nil {
				return t.UTC().Truncate(time.Microsecond), true
			}
		}
		return time.Time{}, false
	}
	if enc == encProto {
		if i, ok := toInt64(v); ok {
			return time.UnixMicro(i).UTC(), true
		}
		return time.Time{}, false
	}
	if f, ok := toFloat64(v); ok {
		return time.UnixMicro(int64(math.Round(f * 1e6))).UTC(), true
	}
	return time.Time{}, false
}

func toDate(v any, enc encoding) (civil.Date, bool) {
	switch x := v.(type) {
	case civil.Date:
		return x, x.IsValid()
	case string:
		d, err := civil.ParseDate(x)
		return d, err == nil
	}
	if i, ok := toInt64(v); ok && enc == encProto {
		return civil.DateOf(time.Unix(i*86400, 0).UTC()), true
	}
	return civil.Date{}, false
}

func toDateTime(v any, enc encoding) (civil.DateTime, bool) {
	switch x := v.(type) {
	case civil.DateTime:
		return x, x.IsValid()
	case string:
		d, err := civil.ParseDateTime(strings.Replace(x, " ", "T", 1))
		return d, err == nil
	}
	if i, ok := toInt64(v); ok && enc == encProto {
		// Packed (CivilTimeEncoding): micros in the low 20 bits, then second,
		// minute (6 bits each), hour, day (5 bits each), month (4) and year.
		hi := i >> 20
		d := civil.DateTime{
			Date: civil.Date{Year: int(hi >> 26), Month: time.Month(hi >> 22 & 0xF), Day: int(hi >> 17 & 0x1F)},
			Time: unpackTime(i),
		}
		return d, d.IsValid()
	}
	return civil.DateTime{}, false
}

func unpackTime(i int64) civil.Time {
	hi := i >> 20
	return civil.Time{Hour: int(hi >> 12 & 0x1F), Minute: int(hi >> 6 & 0x3F), Second: int(hi & 0x3F), Nanosecond: int(i&0xFFFFF) * 1000}
}

func toTime(v any, enc encoding) (civil.Time, bool) {
	switch x := v.(type) {
	case civil.Time:
		return x, x.IsValid()
	case string:
		t, err := civil.ParseTime(x)
		return t, err == nil
	}
	if i, ok := toInt64(v); ok && enc == encProto {
		t := unpackTime(i)
		return t, t.IsValid()
	}
	return civil.Time{}, false
}

// cell renders a stored value the way tabledata.list returns it (with
// formatOptions.useInt64Timestamp, as the Go client asks).
func cell(f *bq.TableFieldSchema, v any) any {
	if v == nil {
		return nil
	}
	if strings.EqualFold(f.Mode, "REPEATED") {
		items := v.([]any)
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = map[string]any{"v": scalarCell(f, it)}
		}
		return out
	}
	return scalarCell(f, v)
}

func scalarCell(f *bq.TableFieldSchema, v any) any {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return strconv.FormatInt(x.UnixMicro(), 10)
	case map[string]any:
		return tableRow(f.Fields, x)
	case fmt.Stringer: // civil.Date, civil.DateTime, civil.Time
		return x.String()
	default:
		return v
	}
}

// tableRow renders a stored row as a tabledata.list row: {"f": [{"v": ...}]}.
func tableRow(fields []*bq.TableFieldSchema, row map[string]any) map[string]any {
	cells := make([]any, len(fields))
	for i, f := range fields {
		cells[i] = map[string]any{"v": cell(f, row[f.Name])}
	}
	return map[string]any{"f": cells}
}
