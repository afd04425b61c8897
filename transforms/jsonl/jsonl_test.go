package jsonl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

type row struct {
	Device string    `json:"device"`
	Value  float64   `json:"value"`
	At     time.Time `json:"at"`
}

func init() {
	beam.RegisterType(reflect.TypeOf(row{}))
}

func readLines(t *testing.T, path string) []row {
	rows, err := ReadFile[row](path)
	require.NoError(t, err)
	return rows
}

// Every element becomes one JSON line, in a directory Write creates, and two
// steps writing to one path both land in it.
func TestWrite(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	want := []row{{"a", 1.5, at}, {"b", -2, at.Add(time.Second)}, {"c", 0, at.Add(time.Minute)}}
	path := filepath.Join(t.TempDir(), "out", "rows.jsonl")

	p, s := beam.NewPipelineWithRoot()
	Write(s, path, beam.CreateList(s, want[:2]))
	Write(s, path, beam.CreateList(s, want[2:]))
	res, err := ptest.RunWithMetrics(p)
	require.NoError(t, err)

	assert.ElementsMatch(t, want, readLines(t, path))
	var counted int64
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "jsonl" && c.Name() == "lines" {
			counted += c.Result()
		}
	}
	assert.Equal(t, int64(3), counted)
}

// A streaming pipeline appends as it goes; lines written by an earlier run
// stay (the pipelines clear their output directory themselves).
func TestWriteStreamingAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"device":"old","value":0,"at":"2026-01-01T00:00:00Z"}`+"\n"), 0o644))

	cfg := teststream.NewConfig()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, cfg.AddElements(mtime.FromTime(at).Milliseconds(), row{"a", 1, at}))
	require.NoError(t, cfg.AdvanceWatermark(mtime.FromTime(at.Add(time.Minute)).Milliseconds()))
	require.NoError(t, cfg.AddElements(mtime.FromTime(at.Add(2*time.Minute)).Milliseconds(), row{"b", 2, at}))
	cfg.AdvanceWatermarkToInfinity()

	p, s := beam.NewPipelineWithRoot()
	Write(s, path, teststream.Create(s, cfg))
	ptest.RunAndValidate(t, p)

	got := readLines(t, path)
	require.Len(t, got, 3)
	assert.Equal(t, "old", got[0].Device)
	assert.ElementsMatch(t, []string{"a", "b"}, []string{got[1].Device, got[2].Device})
}

func TestWriteErrors(t *testing.T) {
	_, s := beam.NewPipelineWithRoot()
	err := TryWrite(s, "", beam.Create(s, 1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "empty path")

	// A path inside a regular file cannot be opened: the run fails naming it.
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	p, s := beam.NewPipelineWithRoot()
	Write(s, filepath.Join(blocker, "rows.jsonl"), beam.Create(s, row{"a", 1, time.Now()}))
	_, err = ptest.RunWithMetrics(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), blocker)
}

// A large bundle's lines reach the file while the bundle runs, whole lines
// at a time, and the rest when it finishes.
func TestWriteFlushesLargeBundles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	fn := &writeFn{Path: path}
	require.NoError(t, fn.Setup())
	defer func() { require.NoError(t, fn.Teardown()) }()
	ctx := context.Background()

	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var n int
	for size(t, path) == 0 {
		require.Less(t, n, FlushSize, "no line reached the file before the bundle finished")
		require.NoError(t, fn.ProcessElement(ctx, row{fmt.Sprintf("d%d", n), float64(n), at}))
		n++
	}
	assert.Len(t, readLines(t, path), n, "the element that filled FlushSize is flushed with the others")
	assert.GreaterOrEqual(t, size(t, path), int64(FlushSize))

	require.NoError(t, fn.ProcessElement(ctx, row{"last", -1, at}))
	require.NoError(t, fn.FinishBundle(ctx))
	got := readLines(t, path)
	require.Len(t, got, n+1)
	for i, r := range got[:n] {
		assert.Equal(t, row{fmt.Sprintf("d%d", i), float64(i), at}, r)
	}
	assert.Equal(t, "last", got[n].Device)
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// ReadFile names the file and line it cannot decode, and the file it cannot
// open.
func TestReadFileErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	require.NoError(t, os.WriteFile(path, []byte("{\"device\":\"a\"}\n\n{\"device\":\n"), 0o644))
	rows, err := ReadFile[row](path)
	require.ErrorContains(t, err, path+" line 3")
	require.Len(t, rows, 1, "the lines before the bad one")
	_, err = ReadFile[row](filepath.Join(t.TempDir(), "missing.jsonl"))
	require.ErrorContains(t, err, "missing.jsonl")
}
