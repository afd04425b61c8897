package enrich

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
)

// registryDir holds the sample registries.
const registryDir = "../../testdata/registry"

func TestLoadSampleRegistries(t *testing.T) {
	want := map[string]map[string]string{
		"sensor-1":  {"site": "berlin", "model": "th-200", "owner": "facilities"},
		"sensor-2":  {"site": "paris", "model": "th-100", "owner": "labs"},
		"gateway-7": {"site": "berlin", "model": "gw-1", "owner": "it"},
	}
	csvReg, err := Load(context.Background(), filepath.Join(registryDir, "devices.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(csvReg.Devices, want) {
		t.Errorf("devices.csv = %v, want %v", csvReg.Devices, want)
	}
	// The JSON lines sample has extra scalar fields: numbers and booleans
	// become strings, null is left out.
	want["sensor-1"]["floor"] = "3"
	want["sensor-2"]["calibrated"] = "true"
	jsonReg, err := Load(context.Background(), filepath.Join(registryDir, "devices.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(jsonReg.Devices, want) {
		t.Errorf("devices.jsonl = %v, want %v", jsonReg.Devices, want)
	}
}

func TestLoadBadRegistries(t *testing.T) {
	tests := []struct {
		file, content string
		wantErr       string // the error must contain it
	}{
		{"dup.jsonl", "{\"device_id\":\"a\"}\n\n{\"device_id\":\"a\"}\n", `dup.jsonl:3: duplicate device_id "a" (first at ` + "%DIR%" + `dup.jsonl:1)`},
		{"noid.jsonl", "{\"device_id\":\"a\"}\n{\"site\":\"x\"}\n", "noid.jsonl:2: no device_id field"},
		{"numid.jsonl", "{\"device_id\":7}\n", "numid.jsonl:1: device_id is json.Number, want a string"},
		{"empty-id.jsonl", "{\"device_id\":\"\"}\n", "empty-id.jsonl:1: empty device_id"},
		{"array.jsonl", "[1,2]\n", "array.jsonl:1: not a JSON object"},
		{"nested.jsonl", "{\"device_id\":\"a\",\"loc\":{\"x\":1}}\n", `nested.jsonl:1: field "loc" is a JSON object`},
		{"list.jsonl", "{\"device_id\":\"a\",\"tags\":[\"x\"]}\n", `list.jsonl:1: field "tags" is a JSON array`},
		{"two.jsonl", "{\"device_id\":\"a\"} {\"device_id\":\"b\"}\n", "two.jsonl:1: more than one JSON value"},
		{"broken.jsonl", "{\"device_id\":\"a\"}\n{\"device_id\":\n", "broken.jsonl:2: not a JSON object"},
		{"noidcol.csv", "id,site\na,x\n", `noidcol.csv:1: no device_id column in the header "id,site"`},
		{"dupcol.csv", "device_id,site,site\na,x,y\n", `dupcol.csv:1: duplicate column "site"`},
		{"emptycol.csv", "device_id,,site\na,x,y\n", "emptycol.csv:1: column 2 has an empty name"},
		{"dup.csv", "device_id,site\na,x\nb,y\na,z\n", `dup.csv:4: duplicate device_id "a" (first at ` + "%DIR%" + `dup.csv:2)`},
		{"short.csv", "device_id,site\na,x\nb\n", "short.csv: record on line 3: wrong number of fields"},
		{"empty-id.csv", "device_id,site\n ,x\n", "empty-id.csv:2: empty device_id"},
		{"empty.csv", "", "empty.csv: empty file, want a header row with a device_id column"},
		{"registry.xml", "<devices/>", `registry.xml: unknown registry format ".xml"`},
	}
	dir := t.TempDir() + string(filepath.Separator)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := dir + tt.file
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			reg, err := Load(context.Background(), path)
			if err == nil {
				t.Fatalf("Load(%s) = %v, want an error", tt.file, reg.Devices)
			}
			want := strings.ReplaceAll(tt.wantErr, "%DIR%", dir)
			if !strings.Contains(err.Error(), dir+want) {
				t.Errorf("Load(%s) error = %q, want it to contain %q", tt.file, err, dir+want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.csv")
	_, err := Load(context.Background(), path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(missing) error = %v, want a not-exist error naming %s", err, path)
	}
}

func TestCheckSource(t *testing.T) {
	for _, ok := range []string{"bq://p:d.t", "bq://my-project:telemetry.devices", "a/b.csv", "x.JSONL", "y.ndjson"} {
		if err := checkSource(ok); err != nil {
			t.Errorf("checkSource(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "bq://p.d.t", "bq://p:d", "bq://:d.t", "bq://p:d.t.u", "registry.txt", "registry"} {
		if err := checkSource(bad); err == nil {
			t.Errorf("checkSource(%q) = nil, want an error", bad)
		}
	}
}

// A failed reload is skipped (the window falls back to the load at start);
// a failed load at start fails.
func TestLoadFnErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone.csv")
	var got []Registry
	emit := func(r Registry) { got = append(got, r) }
	tick := mtime.FromTime(time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC))
	if err := (&loadFn{Source: missing}).ProcessElement(context.Background(), tick, nil, emit); err != nil || len(got) != 0 {
		t.Errorf("reload of a missing file: error %v, emitted %d; want nil, 0", err, len(got))
	}
	if err := (&loadFn{Source: missing, AtStart: true}).ProcessElement(context.Background(), tick, nil, emit); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("load at start of a missing file: error %v, want one naming it", err)
	}
	good := filepath.Join(registryDir, "devices.csv")
	if err := (&loadFn{Source: good}).ProcessElement(context.Background(), tick, nil, emit); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Loaded.Equal(tick.ToTime()) || got[0].Source != good || len(got[0].Devices) != 3 {
		t.Errorf("reload emitted %+v, want one registry of 3 devices loaded at the tick %v", got, tick.ToTime())
	}
}
