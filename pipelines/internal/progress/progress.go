// Package progress prints what a locally running pipeline is doing: messages
// in per second, windows written, dead letters, commands sent.
//
// Beam reports its counters only when a job ends; on local runners the
// pipeline's workers run in the launching process, so the steps that Count
// inserts add to process-wide tallies that a Reporter prints while the job
// runs. On Dataflow the steps count on the workers, where nobody reads them:
// use the job's counters in the Dataflow console there instead.
package progress

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

func init() {
	register.DoFn1x0[beam.X](&countFn{})
}

// tallies are the process-wide counts, by name.
var tallies sync.Map // string -> *atomic.Int64

func tally(name string) *atomic.Int64 {
	v, _ := tallies.LoadOrStore(name, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// Count adds a step that counts the elements of col under name.
func Count(s beam.Scope, name string, col beam.PCollection) {
	beam.ParDo0(s.Scope("progress."+name), &countFn{Name: name}, col)
}

// CountLocal is Count on a local run (local true) and adds nothing
// otherwise: on Dataflow nobody reads the tallies.
func CountLocal(s beam.Scope, local bool, name string, col beam.PCollection) {
	if local {
		Count(s, name, col)
	}
}

type countFn struct {
	Name string

	n *atomic.Int64
}

func (fn *countFn) Setup() {
	fn.n = tally(fn.Name)
}

func (fn *countFn) ProcessElement(beam.X) {
	fn.n.Add(1)
}

// Value is the count under name so far.
func Value(name string) int64 {
	return tally(name).Load()
}

// Line names a count in a Reporter's lines; Rate shows it per second.
type Line struct {
	Name  string
	Label string
	Rate  bool
}

// Report is what a local run's progress lines show: the counts of Lines
// and, while MQTT readers run in the process, whether they are connected,
// their watermark and the oldest window still waiting for it, e.g.
//
//	progress: in 1520 msg/s (45210) | aggregates 84 | watermark 3s behind | oldest open window 12:01:00-12:02:00 (closes in 23s)
//	progress: in 0 msg/s (0) | aggregates 0 | not connected: connecting to tcp://broker:1883 as client "job-0": network: ... connection refused
type Report struct {
	Lines []Line
	// Window, when set, is the job's window grid: the window that starts
	// last among those holding event time t whose ends are after t (Grid).
	// A window fires once the watermark passes its end, so the oldest open
	// window is the one of the watermark.
	Window func(t time.Time) (start, end time.Time)
	// Readers returns the state of the MQTT readers (default
	// mqttio.LocalReaders).
	Readers func() []mqttio.ReaderState
}

// Grid is the Window of fixed (period 0 or size) or sliding windows of
// size starting every period, aligned on the Unix epoch as Beam's windows
// are: of the windows that hold t, the oldest.
func Grid(size, period time.Duration) func(t time.Time) (start, end time.Time) {
	if period <= 0 {
		period = size
	}
	return func(t time.Time) (time.Time, time.Time) {
		// The oldest window that holds t starts after t-size, on the grid.
		ms, p := t.UnixMilli()-size.Milliseconds(), period.Milliseconds()
		start := ms - ((ms%p)+p)%p + p
		s := time.UnixMilli(start)
		return s, s.Add(size)
	}
}

// Run writes a line to w every interval until ctx is done.
func (r Report) Run(ctx context.Context, w io.Writer, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := make([]int64, len(r.Lines))
	prev := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fmt.Fprintln(w, r.Format(last, now.Sub(prev), now))
			prev = now
		}
	}
}

// Format renders a line at now; last holds the counts of the previous
// report, which Format updates, and elapsed is the time since it.
func (r Report) Format(last []int64, elapsed time.Duration, now time.Time) string {
	parts := make([]string, 0, len(r.Lines)+2)
	for i, l := range r.Lines {
		v := Value(l.Name)
		if l.Rate {
			rate := float64(v-last[i]) / elapsed.Seconds()
			parts = append(parts, fmt.Sprintf("%s %.0f msg/s (%d)", l.Label, rate, v))
		} else {
			parts = append(parts, fmt.Sprintf("%s %d", l.Label, v))
		}
		last[i] = v
	}
	readers := r.Readers
	if readers == nil {
		readers = mqttio.LocalReaders
	}
	return "progress: " + strings.Join(append(parts, r.readers(readers(), now)...), " | ")
}

// readers are the parts of a line about the MQTT readers: the first one not
// connected and why, or the watermark and the oldest open window.
func (r Report) readers(states []mqttio.ReaderState, now time.Time) []string {
	var down []mqttio.ReaderState
	var wm time.Time
	for _, s := range states {
		if !s.Connected {
			down = append(down, s)
		}
		if s.Watermark.After(minWatermark) && (wm.IsZero() || s.Watermark.Before(wm)) {
			wm = s.Watermark
		}
	}
	if len(down) > 0 {
		what := "not connected"
		if len(states) > 1 {
			what = fmt.Sprintf("%d of %d readers not connected", len(down), len(states))
		}
		if down[0].Err != nil {
			what += ": " + down[0].Err.Error()
		}
		return []string{what}
	}
	if wm.IsZero() {
		return nil
	}
	parts := []string{"watermark " + lag(now.Sub(wm)) + " behind"}
	if r.Window != nil {
		start, end := r.Window(wm)
		parts = append(parts, fmt.Sprintf("oldest open window %s-%s (closes in %s)",
			start.Local().Format(time.TimeOnly), end.Local().Format(time.TimeOnly), lag(end.Sub(wm))))
	}
	return parts
}

// minWatermark is a watermark that has not started: Beam's minimum
// timestamp, before any reading.
var minWatermark = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// lag renders a duration for a progress line: whole seconds from 10s,
// tenths below.
func lag(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(time.Second).String()
	}
	return max(d, 0).Round(100 * time.Millisecond).String()
}
