// Package streamread holds the splittable-DoFn pieces shared by the
// project's streaming readers (mqttio.Read, pubsubio.Read): a restriction
// that is an offset range over the messages a reader has emitted, its
// tracker, a watermark estimator the reader advances by hand, and the
// per-worker cache of reader sessions (Cache) with their logs of emitted
// messages (Log), the options every reader takes (Settings), and a local
// run's request to drain its sources (RequestDrain).
//
// The scheme they serve acknowledges messages only after the bundle that
// emitted them committed, without bundle finalization (broken in Beam Go
// v2.77.0): a reader numbers the messages it emits, keeps the emitted but
// unacknowledged ones in a per-worker session, and acknowledges everything
// below its restriction's Start when the runner resumes the residual, since
// a resumed residual means the earlier bundle committed.
package streamread

import (
	"fmt"
	"math"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Restriction)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*WatermarkEstimator)(nil)).Elem())
}

// Restriction is the work of one reader: the offsets [Start, End) of the
// messages it emits, numbered in emission order by the reader's session. The
// offsets below Start have been emitted by bundles that committed, so a
// reader resuming at Start acknowledges them.
type Restriction struct {
	// ClientID identifies the reader (its session); empty in the initial
	// restriction that a reader's SplitRestriction turns into one
	// restriction per reader.
	ClientID string
	Start    int64
	End      int64
	// Limit, when positive, is the offset at which a bounded read stops
	// (MaxRecords).
	Limit int64
	// Deadline, when positive, is the Unix time in milliseconds at which a
	// bounded read stops (MaxReadTime).
	Deadline int64
}

// Unbounded returns the initial restriction of a read: from offset 0 on,
// stopping after limit messages when limit is positive and after maxTime
// when maxTime is positive.
func Unbounded(limit int64, maxTime time.Duration) Restriction {
	r := Restriction{Start: 0, End: math.MaxInt64, Limit: limit}
	if maxTime > 0 {
		r.Deadline = time.Now().Add(maxTime).UnixMilli()
	}
	return r
}

// String returns "ClientID[Start, End)".
func (r Restriction) String() string {
	return fmt.Sprintf("%s[%d, %d)", r.ClientID, r.Start, r.End)
}

// Finished reports whether a read that is about to claim offset next has
// reached its end: its Limit or its Deadline, or the process drains its
// sources (package drain).
func (r Restriction) Finished(next int64) bool {
	return DrainRequested() || (r.Limit > 0 && next >= r.Limit) ||
		(r.Deadline > 0 && time.Now().UnixMilli() >= r.Deadline)
}

// Tracker claims offsets of a Restriction. It only splits at checkpoints
// (fraction 0): the messages of a reader exist only on the worker holding its
// session, so there is nothing another worker could take over. Its progress
// reports the messages buffered on the worker as the remaining work, which is
// the backlog Dataflow autoscales on (an unbounded offset range would report
// an enormous one, Beam issue 27707).
type Tracker struct {
	rest    Restriction
	claimed int64 // the last claimed offset, Start-1 before the first claim
	stopped bool
	err     error
	backlog func(claimed int64) int64
}

// NewTracker returns a tracker for rest. backlog, when not nil, returns the
// number of messages waiting on the worker beyond offset claimed; it is
// called by progress reports, concurrently with the reader.
func NewTracker(rest Restriction, backlog func(claimed int64) int64) *Tracker {
	return &Tracker{rest: rest, claimed: rest.Start - 1, backlog: backlog}
}

// TryClaim claims the next offset; it must be the one after the last claimed.
func (t *Tracker) TryClaim(pos any) bool {
	if t.stopped || t.err != nil {
		return false
	}
	off, ok := pos.(int64)
	if !ok {
		t.err = fmt.Errorf("streamread: claimed position %v has type %T, want int64", pos, pos)
		return false
	}
	if off != t.claimed+1 {
		t.err = fmt.Errorf("streamread: claimed offset %d, want %d (restriction %v)", off, t.claimed+1, t.rest)
		return false
	}
	if off >= t.rest.End {
		t.stopped = true
		return false
	}
	t.claimed = off
	return true
}

// Stop ends the restriction after the last claimed offset.
func (t *Tracker) Stop() {
	t.stopped = true
	t.rest.End = t.claimed + 1
}

// GetError returns the error of a wrong claim, if any.
func (t *Tracker) GetError() error { return t.err }

// IsDone reports whether no offset is left to claim.
func (t *Tracker) IsDone() bool {
	return t.err == nil && (t.stopped || t.claimed+1 >= t.rest.End)
}

// TrySplit splits at the checkpoint only: the primary keeps what was claimed,
// the residual starts after it.
func (t *Tracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if fraction > 0 || t.IsDone() {
		return t.rest, nil, nil
	}
	res := t.rest
	res.Start = t.claimed + 1
	t.rest.End = t.claimed + 1
	return t.rest, res, nil
}

// GetProgress reports the claimed offsets as done and the messages waiting
// on the worker as remaining.
func (t *Tracker) GetProgress() (done, remaining float64) {
	done = float64(t.claimed + 1 - t.rest.Start)
	if t.IsDone() {
		return done, 0
	}
	if t.backlog != nil {
		remaining = float64(t.backlog(t.claimed))
	}
	if t.rest.End != math.MaxInt64 {
		remaining = math.Min(remaining, float64(t.rest.End-t.claimed-1))
	}
	return done, remaining
}

// GetRestriction returns the restriction, narrowed by splits and Stop.
func (t *Tracker) GetRestriction() any { return t.rest }

// IsBounded reports whether the read stops by itself.
func (t *Tracker) IsBounded() bool {
	return t.rest.End != math.MaxInt64 || t.rest.Limit > 0 || t.rest.Deadline > 0
}

// WatermarkEstimator holds a reader's watermark, in Beam milliseconds. The
// reader advances it by hand: to each emitted message's event time minus its
// out-of-orderness bound, and to the current time minus that bound while
// idle. The runner reads it concurrently (progress reports, splits), so it
// is atomic.
//
// The watermark moves in whole steps (a multiple of the step since the Unix
// epoch). Windows on whole seconds close at the same moment as with an exact
// watermark, but downstream stages see far fewer watermark changes: prism
// (v2.77.0) rescans every pending element of a GroupByKey on each change of
// its input watermark, which took 40% of the telemetry job's CPU when the
// watermark moved with every bundle.
type WatermarkEstimator struct {
	state atomic.Int64
	// exact is the latest watermark before rounding: a window on the step
	// grid closes when it passes the window's end (Exact).
	exact atomic.Int64
	step  int64
}

// NewWatermarkEstimator returns an estimator at state, a watermark in Beam
// milliseconds (what State returned), that advances in steps of step (0 or
// less than a millisecond: every millisecond).
func NewWatermarkEstimator(state int64, step time.Duration) *WatermarkEstimator {
	e := &WatermarkEstimator{step: max(step.Milliseconds(), 1)}
	e.state.Store(state)
	e.exact.Store(state)
	return e
}

// State returns the watermark in Beam milliseconds, for checkpoints.
func (e *WatermarkEstimator) State() int64 {
	return e.state.Load()
}

// CurrentWatermark returns the watermark.
func (e *WatermarkEstimator) CurrentWatermark() time.Time {
	return mtime.Time(e.state.Load()).ToTime()
}

// Exact returns the watermark before it is rounded down to a whole step: how
// far the reader's input has come. A window whose end is on the step grid
// closes once Exact passes its end.
func (e *WatermarkEstimator) Exact() time.Time {
	return mtime.Time(e.exact.Load()).ToTime()
}

// Advance moves the watermark to t, rounded down to a whole step, unless it
// is already later.
func (e *WatermarkEstimator) Advance(t time.Time) {
	ms := int64(mtime.FromTime(t))
	advanceTo(&e.exact, ms)
	r := ms % e.step
	if r < 0 { // before 1970: round down too
		r += e.step
	}
	advanceTo(&e.state, ms-r)
}

// advanceTo moves v to ms unless it is already later.
func advanceTo(v *atomic.Int64, ms int64) {
	for {
		cur := v.Load()
		if ms <= cur || v.CompareAndSwap(cur, ms) {
			return
		}
	}
}
