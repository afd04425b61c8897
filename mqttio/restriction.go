package mqttio

import (
	"fmt"
	"math"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*restriction)(nil)).Elem())
}

// restriction is the work of one reader: the offsets [Start, End) of the
// messages it emits, numbered in emission order by the reader's session. The
// offsets below Start have been emitted by bundles that committed, so a
// reader resuming at Start acknowledges them.
type restriction struct {
	// ClientID identifies the reader; empty in the initial restriction that
	// SplitRestriction turns into one restriction per reader.
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

func (r restriction) String() string {
	return fmt.Sprintf("%s[%d, %d)", r.ClientID, r.Start, r.End)
}

// tracker claims offsets of a restriction. It only splits at checkpoints
// (fraction 0): the messages of a reader exist only on the worker holding its
// session, so there is nothing another worker could take over. Its progress
// reports the messages buffered on the worker as the remaining work, which is
// the backlog Dataflow autoscales on (an unbounded offset range would report
// an enormous one, Beam issue 27707).
type tracker struct {
	rest    restriction
	claimed int64 // the last claimed offset, Start-1 before the first claim
	stopped bool
	err     error
	backlog func() int64
}

func newTracker(rest restriction, backlog func() int64) *tracker {
	return &tracker{rest: rest, claimed: rest.Start - 1, backlog: backlog}
}

// TryClaim claims the next offset; it must be the one after the last claimed.
func (t *tracker) TryClaim(pos any) bool {
	if t.stopped || t.err != nil {
		return false
	}
	off, ok := pos.(int64)
	if !ok {
		t.err = fmt.Errorf("mqttio: claimed position %v has type %T, want int64", pos, pos)
		return false
	}
	if off != t.claimed+1 {
		t.err = fmt.Errorf("mqttio: claimed offset %d, want %d (restriction %v)", off, t.claimed+1, t.rest)
		return false
	}
	if off >= t.rest.End {
		t.stopped = true
		return false
	}
	t.claimed = off
	return true
}

// stop ends the restriction after the last claimed offset.
func (t *tracker) stop() {
	t.stopped = true
	t.rest.End = t.claimed + 1
}

func (t *tracker) GetError() error { return t.err }

// IsDone reports whether no offset is left to claim.
func (t *tracker) IsDone() bool {
	return t.err == nil && (t.stopped || t.claimed+1 >= t.rest.End)
}

// TrySplit splits at the checkpoint only: the primary keeps what was claimed,
// the residual starts after it.
func (t *tracker) TrySplit(fraction float64) (primary, residual any, err error) {
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
func (t *tracker) GetProgress() (done, remaining float64) {
	done = float64(t.claimed + 1 - t.rest.Start)
	if t.IsDone() {
		return done, 0
	}
	if t.backlog != nil {
		remaining = float64(t.backlog())
	}
	if t.rest.End != math.MaxInt64 {
		remaining = math.Min(remaining, float64(t.rest.End-t.claimed-1))
	}
	return done, remaining
}

func (t *tracker) GetRestriction() any { return t.rest }

// IsBounded reports whether the read stops by itself.
func (t *tracker) IsBounded() bool {
	return t.rest.End != math.MaxInt64 || t.rest.Limit > 0 || t.rest.Deadline > 0
}
