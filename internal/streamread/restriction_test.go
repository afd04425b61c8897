package streamread

import (
	"math"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/stretchr/testify/require"
)

func TestTrackerCheckpointsAfterTheLastClaim(t *testing.T) {
	tr := NewTracker(Restriction{ClientID: "c-0", Start: 10, End: math.MaxInt64}, func(claimed int64) int64 { return 7 })
	require.False(t, tr.IsBounded())
	require.True(t, tr.TryClaim(int64(10)))
	require.True(t, tr.TryClaim(int64(11)))
	done, remaining := tr.GetProgress()
	require.Equal(t, 2.0, done)
	require.Equal(t, 7.0, remaining, "the backlog on the worker, not the unbounded end")

	// Only checkpoints split: the messages exist on this worker only.
	p, r, err := tr.TrySplit(0.5)
	require.NoError(t, err)
	require.Nil(t, r)
	require.Equal(t, tr.GetRestriction(), p)

	p, r, err = tr.TrySplit(0)
	require.NoError(t, err)
	require.Equal(t, Restriction{ClientID: "c-0", Start: 10, End: 12}, p)
	require.Equal(t, Restriction{ClientID: "c-0", Start: 12, End: math.MaxInt64}, r)
	require.True(t, tr.IsDone())

	require.False(t, tr.TryClaim(int64(12)))
	require.NoError(t, tr.GetError(), "a claim past the end is a stop, not an error")

	skip := NewTracker(Restriction{Start: 0, End: 10}, nil)
	require.False(t, skip.TryClaim(int64(3)))
	require.ErrorContains(t, skip.GetError(), "want 0")
}

func TestTrackerBacklogSeesTheLastClaim(t *testing.T) {
	var seen int64 = -100
	tr := NewTracker(Restriction{Start: 5, End: math.MaxInt64}, func(claimed int64) int64 { seen = claimed; return 3 })
	require.True(t, tr.TryClaim(int64(5)))
	_, remaining := tr.GetProgress()
	require.Equal(t, 3.0, remaining)
	require.Equal(t, int64(5), seen)

	bounded := NewTracker(Restriction{Start: 0, End: 2}, func(int64) int64 { return 50 })
	_, remaining = bounded.GetProgress()
	require.Equal(t, 2.0, remaining, "never more than what is left of a bounded range")
}

func TestUnboundedAndFinished(t *testing.T) {
	r := Unbounded(3, 0)
	require.Equal(t, Restriction{End: math.MaxInt64, Limit: 3}, r)
	require.False(t, r.Finished(2))
	require.True(t, r.Finished(3))
	require.True(t, NewTracker(r, nil).IsBounded())

	timed := Unbounded(0, time.Hour)
	require.False(t, timed.Finished(1e9))
	timed.Deadline = time.Now().Add(-time.Second).UnixMilli()
	require.True(t, timed.Finished(0))
	require.False(t, NewTracker(Unbounded(0, 0), nil).IsBounded())
}

func TestWatermarkOnlyAdvances(t *testing.T) {
	we := NewWatermarkEstimator(0, 0)
	t0 := time.UnixMilli(1_700_000_000_123)
	we.Advance(t0)
	we.Advance(t0.Add(-time.Minute))
	require.True(t, we.CurrentWatermark().Equal(t0))
	we.Advance(t0.Add(time.Second))
	require.True(t, we.CurrentWatermark().Equal(t0.Add(time.Second)))
	require.Equal(t, t0.Add(time.Second).UnixMilli(), we.State())
}

func TestWatermarkMovesInSteps(t *testing.T) {
	we := NewWatermarkEstimator(0, time.Second)
	t0 := time.UnixMilli(1_700_000_000_000)
	we.Advance(t0.Add(999 * time.Millisecond))
	require.True(t, we.CurrentWatermark().Equal(t0), "rounded down to the step: %v", we.CurrentWatermark())
	require.True(t, we.Exact().Equal(t0.Add(999*time.Millisecond)), "the exact watermark: %v", we.Exact())
	we.Advance(t0.Add(500 * time.Millisecond))
	require.True(t, we.Exact().Equal(t0.Add(999*time.Millisecond)), "the exact watermark only advances: %v", we.Exact())
	we.Advance(t0.Add(1999 * time.Millisecond))
	require.True(t, we.CurrentWatermark().Equal(t0.Add(time.Second)))
	we.Advance(t0.Add(2 * time.Second))
	require.True(t, we.CurrentWatermark().Equal(t0.Add(2*time.Second)))

	before := NewWatermarkEstimator(int64(mtime.MinTimestamp), time.Second)
	before.Advance(time.UnixMilli(-1500))
	require.Equal(t, int64(-2000), before.State(), "times before 1970 round down too")
}
