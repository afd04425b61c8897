// Package jsonl writes a PCollection as newline-delimited JSON to a local
// file, one element per line, in bounded and streaming pipelines alike.
//
// It is the local stand-in for a table: the telemetry pipeline writes its
// aggregates, readings, dead letters and commands with it when it runs on the
// user's machine. Lines are appended as bundles finish, and within a bundle
// whenever FlushSize bytes of them are waiting, so a streaming run shows its
// output while it runs (a large bundle, such as a window's aggregates, as it
// is computed), and a line is on disk (written to the operating system)
// before the bundle that produced it commits. A bundle that
// the runner retries can write its lines again: consumers should tolerate
// duplicates, as they must for any at-least-once sink.
//
// Every worker of a local runner runs in one process and writes to one file
// per path, through a per-process cache of open files. On Dataflow the
// workers' local disks are not where a user looks: use BigQuery there.
package jsonl

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn2x1[context.Context, beam.X, error](&writeFn{})
}

// Write appends each element of col, encoded with encoding/json (or its
// Appender, when it has one), as one line to the file at path, creating it
// and its directory when missing. It counts the lines in the Beam counter
// jsonl/lines (per step).
func Write(s beam.Scope, path string, col beam.PCollection) {
	if err := TryWrite(s, path, col); err != nil {
		panic(err)
	}
}

// TryWrite is Write returning an error instead of panicking.
func TryWrite(s beam.Scope, path string, col beam.PCollection) error {
	if path == "" {
		return fmt.Errorf("jsonl.Write: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("jsonl.Write: path %q: %w", path, err)
	}
	s = s.Scope("jsonl.Write")
	_, err = beam.TryParDo(s, &writeFn{Path: abs}, col)
	return err
}

var lines = beam.NewCounter("jsonl", "lines")

// FlushSize is how many bytes of lines a bundle collects before it appends
// them to the file, whole lines at a time; a bundle appends the rest when it
// finishes.
const FlushSize = 64 << 10

// Appender is an element that encodes itself: AppendJSON appends to b what
// json.Marshal would return for it, faster (e.g. without reflection).
type Appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

type writeFn struct {
	Path string

	f   *file
	buf []byte
	n   int64
}

func (fn *writeFn) Setup() error {
	f, err := files.open(fn.Path)
	if err != nil {
		return fmt.Errorf("jsonl.Write: %w", err)
	}
	fn.f = f
	return nil
}

func (fn *writeFn) ProcessElement(ctx context.Context, elem beam.X) error {
	var err error
	start := len(fn.buf)
	if a, ok := elem.(Appender); ok {
		fn.buf, err = a.AppendJSON(fn.buf)
	} else {
		var b []byte
		b, err = json.Marshal(elem)
		fn.buf = append(fn.buf, b...)
	}
	if err != nil {
		fn.buf = fn.buf[:start] // no partial line
		return fmt.Errorf("jsonl.Write: encoding an element for %s: %w", fn.Path, err)
	}
	fn.buf = append(fn.buf, '\n')
	fn.n++
	if len(fn.buf) >= FlushSize {
		return fn.flush(ctx)
	}
	return nil
}

func (fn *writeFn) FinishBundle(ctx context.Context) error {
	return fn.flush(ctx)
}

// flush appends the lines collected so far to the file.
func (fn *writeFn) flush(ctx context.Context) error {
	if len(fn.buf) == 0 {
		return nil
	}
	if err := fn.f.write(fn.buf); err != nil {
		return fmt.Errorf("jsonl.Write: %w", err)
	}
	lines.Inc(ctx, fn.n)
	fn.buf = fn.buf[:0]
	fn.n = 0
	return nil
}

func (fn *writeFn) Teardown() error {
	if fn.f == nil {
		return nil
	}
	err := files.release(fn.f)
	fn.f = nil
	return err
}

// file is an open output file shared by the DoFn instances of a process.
type file struct {
	mu   sync.Mutex
	path string
	f    *os.File
	refs int
}

// write appends lines in one piece.
func (f *file) write(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.f.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	return nil
}

// fileCache is the per-process cache of open files, keyed by path.
type fileCache struct {
	mu    sync.Mutex
	files map[string]*file
}

var files = &fileCache{files: map[string]*file{}}

func (c *fileCache) open(path string) (*file, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.files[path]; ok {
		f.refs++
		return f, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	osf, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	f := &file{path: path, f: osf, refs: 1}
	c.files[path] = f
	return f, nil
}

func (c *fileCache) release(f *file) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.refs--
	if f.refs > 0 {
		return nil
	}
	delete(c.files, f.path)
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("jsonl.Write: closing %s: %w", f.path, err)
	}
	return nil
}
