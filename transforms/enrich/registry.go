package enrich

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Registry)(nil)).Elem())
}

// IDField is the field (JSON lines), column (CSV) or column (BigQuery) that
// holds the device id in a registry source.
const IDField = "device_id"

// bigQueryScheme prefixes a BigQuery table source: bq://PROJECT:DATASET.TABLE.
const bigQueryScheme = "bq://"

// maxLine is the longest line of a JSON lines registry.
const maxLine = 1 << 20

// Registry is one load of a device registry: the attributes ("site",
// "model", "owner" and any other columns, as strings) of each device id.
type Registry struct {
	// Source is where the registry was loaded from.
	Source string
	// Loaded orders the loads of a source: the time of the refresh tick
	// that loaded it (see Refresh), or the wall time of the initial load.
	Loaded time.Time
	// Devices maps a device id to its attributes. The id itself is not an
	// attribute.
	Devices map[string]map[string]string
}

// Load reads the registry a source names:
//   - a path ending in .jsonl, .ndjson or .json: JSON lines, one object per
//     line with a string "device_id"; its other fields are attributes
//     (strings as they are, numbers and booleans as written, null fields
//     left out; objects and arrays are an error). Blank lines are skipped.
//   - a path ending in .csv: a header row with a "device_id" column, then
//     one device per row; empty cells are left out.
//   - bq://PROJECT:DATASET.TABLE: every row of a BigQuery table with a
//     "device_id" column, read with the client's default credentials;
//     clientOpts (e.g. an endpoint) apply to this source only. NULL columns
//     are left out; others are formatted as strings (RECORD and REPEATED
//     columns are an error).
//
// A device id that is empty or repeated is an error naming the file and
// line (or the table and row).
func Load(ctx context.Context, source string, clientOpts ...option.ClientOption) (Registry, error) {
	var (
		devices map[string]map[string]string
		err     error
	)
	if strings.HasPrefix(source, bigQueryScheme) {
		devices, err = readBigQuery(ctx, source, clientOpts)
	} else {
		devices, err = readFile(source)
	}
	if err != nil {
		return Registry{}, fmt.Errorf("enrich: load registry: %w", err)
	}
	return Registry{Source: source, Devices: devices}, nil
}

// checkSource tells whether source names a kind of registry Load reads,
// without reading it.
func checkSource(source string) error {
	if strings.HasPrefix(source, bigQueryScheme) {
		_, _, _, err := parseTable(source)
		return err
	}
	_, err := fileParser(source)
	return err
}

func fileParser(path string) (func(string, io.Reader) (map[string]map[string]string, error), error) {
	if path == "" {
		return nil, errors.New("empty registry source")
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson", ".json":
		return ParseJSONLines, nil
	case ".csv":
		return ParseCSV, nil
	default:
		return nil, fmt.Errorf("%s: unknown registry format %q (want .jsonl, .ndjson, .json, .csv or a bq://PROJECT:DATASET.TABLE)", path, filepath.Ext(path))
	}
}

func readFile(path string) (map[string]map[string]string, error) {
	parse, err := fileParser(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(path, f)
}

// devices collects the devices of a registry and rejects empty and repeated
// ids; where says where a device was found ("file:line").
type devices struct {
	byID  map[string]map[string]string
	where map[string]string
}

func newDevices() *devices {
	return &devices{byID: map[string]map[string]string{}, where: map[string]string{}}
}

func (d *devices) add(where, id string, attrs map[string]string) error {
	if id == "" {
		return fmt.Errorf("%s: empty %s", where, IDField)
	}
	if first, dup := d.where[id]; dup {
		return fmt.Errorf("%s: duplicate %s %q (first at %s)", where, IDField, id, first)
	}
	d.where[id] = where
	d.byID[id] = attrs
	return nil
}

// ParseJSONLines parses a JSON lines registry (see Load); name names it in
// errors.
func ParseJSONLines(name string, r io.Reader) (map[string]map[string]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	out := newDevices()
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, line)
		id, attrs, err := parseJSONObject(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := out.add(where, id, attrs); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out.byID, nil
}

func parseJSONObject(b []byte) (string, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return "", nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return "", nil, errors.New("more than one JSON value on the line")
	}
	if obj == nil {
		return "", nil, errors.New("not a JSON object: null")
	}
	rawID, ok := obj[IDField]
	if !ok {
		return "", nil, fmt.Errorf("no %s field", IDField)
	}
	id, ok := rawID.(string)
	if !ok {
		return "", nil, fmt.Errorf("%s is %T, want a string", IDField, rawID)
	}
	attrs, err := attributes(obj, func(v any) (string, error) {
		switch v := v.(type) {
		case string:
			return v, nil
		case json.Number:
			return v.String(), nil
		case bool:
			return fmt.Sprint(v), nil
		default:
			return "", fmt.Errorf("is a JSON %s, want a string, number or boolean", jsonKind(v))
		}
	})
	return id, attrs, err
}

// attributes formats the fields of a row other than the device id, leaving
// out nulls.
func attributes[V comparable](row map[string]V, format func(V) (string, error)) (map[string]string, error) {
	var null V
	attrs := make(map[string]string, len(row))
	for k, v := range row {
		if k == IDField || v == null {
			continue
		}
		s, err := format(v)
		if err != nil {
			return nil, fmt.Errorf("field %q %w", k, err)
		}
		attrs[k] = s
	}
	return attrs, nil
}

func jsonKind(v any) string {
	if _, ok := v.([]any); ok {
		return "array"
	}
	return "object"
}

// ParseCSV parses a CSV registry (see Load); name names it in errors.
func ParseCSV(name string, r io.Reader) (map[string]map[string]string, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, want a header row with a %s column", name, IDField)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	idCol := -1
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		header[i] = h
		if h == "" {
			return nil, fmt.Errorf("%s:1: column %d has an empty name", name, i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("%s:1: duplicate column %q", name, h)
		}
		seen[h] = true
		if h == IDField {
			idCol = i
		}
	}
	if idCol < 0 {
		return nil, fmt.Errorf("%s:1: no %s column in the header %q", name, IDField, strings.Join(header, ","))
	}
	out := newDevices()
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out.byID, nil
		}
		if err != nil {
			// A csv.ParseError names the line.
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		attrs := make(map[string]string, len(rec)-1)
		for i, v := range rec {
			if i != idCol && v != "" {
				attrs[header[i]] = v
			}
		}
		if err := out.add(fmt.Sprintf("%s:%d", name, line), strings.TrimSpace(rec[idCol]), attrs); err != nil {
			return nil, err
		}
	}
}

// parseTable splits bq://PROJECT:DATASET.TABLE.
func parseTable(source string) (project, dataset, table string, err error) {
	rest := strings.TrimPrefix(source, bigQueryScheme)
	project, dt, ok1 := strings.Cut(rest, ":")
	dataset, table, ok2 := strings.Cut(dt, ".")
	if !ok1 || !ok2 || project == "" || dataset == "" || table == "" || strings.Contains(table, ".") {
		return "", "", "", fmt.Errorf("%q is not a BigQuery table bq://PROJECT:DATASET.TABLE", source)
	}
	return project, dataset, table, nil
}

func readBigQuery(ctx context.Context, source string, clientOpts []option.ClientOption) (map[string]map[string]string, error) {
	project, dataset, table, err := parseTable(source)
	if err != nil {
		return nil, err
	}
	client, err := bigquery.NewClient(ctx, project, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("%s: BigQuery client: %w", source, err)
	}
	defer client.Close()
	it := client.Dataset(dataset).Table(table).Read(ctx)
	out := newDevices()
	for row := 1; ; row++ {
		var values map[string]bigquery.Value
		err := it.Next(&values)
		if err == iterator.Done {
			return out.byID, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: row %d: %w", source, row, err)
		}
		where := fmt.Sprintf("%s: row %d", source, row)
		id, attrs, err := fromBigQuery(values)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := out.add(where, id, attrs); err != nil {
			return nil, err
		}
	}
}

func fromBigQuery(values map[string]bigquery.Value) (string, map[string]string, error) {
	rawID, ok := values[IDField]
	if !ok {
		return "", nil, fmt.Errorf("no %s column", IDField)
	}
	id, ok := rawID.(string)
	if !ok && rawID != nil {
		return "", nil, fmt.Errorf("%s is %T, want a STRING", IDField, rawID)
	}
	attrs, err := attributes(values, func(v bigquery.Value) (string, error) {
		switch v := v.(type) {
		case []bigquery.Value, map[string]bigquery.Value:
			return "", errors.New("is REPEATED or a RECORD, want a scalar")
		case time.Time:
			return v.UTC().Format(time.RFC3339Nano), nil
		case *big.Rat:
			return bigquery.NumericString(v), nil
		default:
			return fmt.Sprint(v), nil
		}
	})
	return id, attrs, err
}
