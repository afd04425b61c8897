package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
)

// growth records when a file that only grows (the job's JSON lines,
// appended whole lines at a time) reached each size, so that every line can be
// given the time it appeared: the first observation whose size covers the
// line's end. It is safe for concurrent use.
type growth struct {
	path  string
	mu    sync.Mutex
	sizes []int64
	times []time.Time
}

// poll records the file's size at now when it grew; a missing file has not
// appeared yet.
func (g *growth) poll(now time.Time) error {
	fi, err := os.Stat(g.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watching the job's output: %w", err)
	}
	g.observe(fi.Size(), now)
	return nil
}

// observe records that the file had size at t.
func (g *growth) observe(size int64, t time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.sizes); n == 0 || size > g.sizes[n-1] {
		g.sizes = append(g.sizes, size)
		g.times = append(g.times, t)
	}
}

// appeared returns when the file first held end bytes.
func (g *growth) appeared(end int64) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := sort.Search(len(g.sizes), func(i int) bool { return g.sizes[i] >= end })
	if i == len(g.sizes) {
		return time.Time{}, false
	}
	return g.times[i], true
}

// eachLine calls fn with every complete line of r (JSON rows), decoded into
// a fresh T, and the time g saw it appear. A line that appeared after g's
// last observation is an error: the file was read before it was watched to
// its end.
func eachLine[T any](r io.Reader, g *growth, fn func(row *T, appeared time.Time)) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var end int64
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%s:%d: line longer than %d bytes", g.path, line, br.Size())
		}
		if errors.Is(err, io.EOF) {
			return nil // an incomplete last line is not a row yet
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", g.path, err)
		}
		end += int64(len(b))
		at, ok := g.appeared(end)
		if !ok {
			return fmt.Errorf("%s:%d: not seen by the watcher", g.path, line)
		}
		row := new(T)
		if err := json.Unmarshal(b, row); err != nil {
			return fmt.Errorf("%s:%d: %w", g.path, line, err)
		}
		fn(row, at)
	}
}

// scan opens g's file and calls eachLine; a file the job never wrote has no
// rows.
func scan[T any](g *growth, fn func(row *T, appeared time.Time)) error {
	f, err := os.Open(g.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return eachLine(f, g, fn)
}

// readingRow and aggregateRow are the columns of transforms/rows.Reading and
// rows.Aggregate the benchmark uses.
type readingRow struct {
	DeviceID   string    `json:"device_id"`
	EventTime  time.Time `json:"event_time"`
	ReceivedAt time.Time `json:"received_at"`
}

type aggregateRow struct {
	DeviceID    string    `json:"device_id"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Pane        string    `json:"pane"`
}

// reading is what the latencies need of a readings row.
type reading struct {
	device          string
	event, received time.Time
	windowStart     time.Time
}

// windowStart is the start of the fixed window (aligned to the Unix epoch,
// as Beam's) that holds t.
func windowStart(t time.Time, window time.Duration) time.Time {
	ms, w := t.UnixMilli(), window.Milliseconds()
	return time.UnixMilli(ms - ((ms%w)+w)%w)
}

// windowKey names a device's window.
type windowKey struct {
	device string
	start  int64 // UnixMilli
}

// results are the figures computed from the job's output files.
type results struct {
	readings                 int64
	firstReceived, lastRead  time.Time
	readingLatency           []time.Duration
	closeDelay               []time.Duration
	aggregateLatency         []time.Duration
	aggregateRows            int64
	finalWindowRows          int64
	readingsWithoutAggregate int64
	// windows are the closed windows' on-time rows, by window end (Unix
	// milliseconds).
	windows map[int64]*windowRows
}

// windowRows tells when the on-time rows of one window appeared.
type windowRows struct {
	rows        int64
	first, last time.Time
}

func (w *windowRows) add(at time.Time) {
	if w.rows == 0 || at.Before(w.first) {
		w.first = at
	}
	if at.After(w.last) {
		w.last = at
	}
	w.rows++
}

// logWindows logs when each closed window's rows appeared.
func (r *results) logWindows() {
	for _, ms := range slices.Sorted(maps.Keys(r.windows)) {
		w, end := r.windows[ms], time.UnixMilli(ms)
		logf("window ending %s: %d on-time rows, appeared %.1fs to %.1fs after its end (the last message was read at %s)",
			end.Format("15:04:05"), w.rows, w.first.Sub(end).Seconds(), w.last.Sub(end).Seconds(), r.lastRead.Format("15:04:05.000"))
	}
}

// analyze reads the job's readings and aggregates files, watched by
// readingsFile and aggregatesFile; window is the job's fixed window.
//
// The readings give the rate in (rows over the span of their received_at)
// and the publish-to-reading-row latencies. Aggregate rows of windows that
// end after the last message was read were fired by the job's stop, not by
// the watermark: they count in finalWindowRows and nothing else. For the
// others, an on-time row's window-close delay is its appearance minus its
// window end, and a message's publish-to-aggregate-row latency is the
// appearance of the first on-time row of its device and window minus its
// publish time; a message read after that row appeared (late, so a dead
// letter) counts as without aggregate, like one whose window has no row.
func analyze(readingsFile, aggregatesFile *growth, window time.Duration) (*results, error) {
	var (
		res  = results{windows: map[int64]*windowRows{}}
		msgs []reading
	)
	err := scan(readingsFile, func(r *readingRow, at time.Time) {
		res.readings++
		if res.firstReceived.IsZero() || r.ReceivedAt.Before(res.firstReceived) {
			res.firstReceived = r.ReceivedAt
		}
		if r.ReceivedAt.After(res.lastRead) {
			res.lastRead = r.ReceivedAt
		}
		res.readingLatency = append(res.readingLatency, at.Sub(r.EventTime))
		msgs = append(msgs, reading{device: r.DeviceID, event: r.EventTime, received: r.ReceivedAt,
			windowStart: windowStart(r.EventTime, window)})
	})
	if err != nil {
		return nil, err
	}
	closed := func(windowEnd time.Time) bool { return !windowEnd.After(res.lastRead) }

	fired := map[windowKey]time.Time{}
	err = scan(aggregatesFile, func(a *aggregateRow, at time.Time) {
		res.aggregateRows++
		if !closed(a.WindowEnd) {
			res.finalWindowRows++
			return
		}
		if a.Pane != "on_time" {
			return
		}
		res.closeDelay = append(res.closeDelay, at.Sub(a.WindowEnd))
		w := res.windows[a.WindowEnd.UnixMilli()]
		if w == nil {
			w = &windowRows{}
			res.windows[a.WindowEnd.UnixMilli()] = w
		}
		w.add(at)
		k := windowKey{a.DeviceID, a.WindowStart.UnixMilli()}
		if t, ok := fired[k]; !ok || at.Before(t) {
			fired[k] = at
		}
	})
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if !closed(m.windowStart.Add(window)) {
			continue
		}
		at, ok := fired[windowKey{m.device, m.windowStart.UnixMilli()}]
		if !ok || at.Before(m.received) {
			res.readingsWithoutAggregate++
			continue
		}
		res.aggregateLatency = append(res.aggregateLatency, at.Sub(m.event))
	}
	return &res, nil
}

// figures are the results' figures; window is the job's fixed window.
func (r *results) figures(window time.Duration) []figure {
	figs := []figure{
		{pipelineRate, rate(r.readings, r.lastRead.Sub(r.firstReceived)), "%.0f"},
		{"pipeline_readings_rows", float64(r.readings), "%.0f"},
		{"pipeline_read_span_s", r.lastRead.Sub(r.firstReceived).Seconds(), "%.1f"},
	}
	figs = append(figs, latencyFigures("publish_to_reading_row", r.readingLatency)...)
	figs = append(figs, latencyFigures("window_close_delay", r.closeDelay)...)
	figs = append(figs, latencyFigures("publish_to_aggregate_row", r.aggregateLatency)...)
	return append(figs,
		figure{aggregateTarget, float64((window + targetSlackMS*time.Millisecond) / time.Millisecond), "%.0f"},
		figure{"readings_without_on_time_aggregate", float64(r.readingsWithoutAggregate), "%.0f"},
		figure{"aggregate_rows", float64(r.aggregateRows), "%.0f"},
		figure{"aggregate_rows_of_final_windows", float64(r.finalWindowRows), "%.0f"},
	)
}
