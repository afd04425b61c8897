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

// Report writes one line to w every interval until ctx is done, e.g.
//
//	progress: in 1520 msg/s (45210) | aggregates 84 | dead letters 31 | commands 2
func Report(ctx context.Context, w io.Writer, interval time.Duration, lines ...Line) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := make([]int64, len(lines))
	prev := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fmt.Fprintln(w, Format(lines, last, now.Sub(prev)))
			prev = now
		}
	}
}

// Format renders the counts of lines; last holds the counts of the previous
// report, which Format updates, and elapsed the time since it.
func Format(lines []Line, last []int64, elapsed time.Duration) string {
	parts := make([]string, len(lines))
	for i, l := range lines {
		v := Value(l.Name)
		if l.Rate {
			rate := float64(v-last[i]) / elapsed.Seconds()
			parts[i] = fmt.Sprintf("%s %.0f msg/s (%d)", l.Label, rate, v)
		} else {
			parts[i] = fmt.Sprintf("%s %d", l.Label, v)
		}
		last[i] = v
	}
	return "progress: " + strings.Join(parts, " | ")
}
