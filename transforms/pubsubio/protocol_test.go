package pubsubio

import (
	"context"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/mqttbeam/mqttbeam/internal/streamread"
	"github.com/stretchr/testify/require"
)

// These tests drive readFn the way a runner does, one bundle at a time.

type bundleResult struct {
	msgs     []Message
	residual streamread.Restriction
	wm       time.Time
}

// runBundle processes r as a runner would: tracker, estimator,
// ProcessElement, and the checkpoint split the DoFn asks for by resuming.
func runBundle(t *testing.T, fn *readFn, r streamread.Restriction) bundleResult {
	t.Helper()
	rt := fn.CreateTracker(r)
	we := fn.CreateWatermarkEstimator(fn.InitialWatermarkEstimatorState(0, r, nil))
	var res bundleResult
	cont, err := fn.ProcessElement(context.Background(), rt, nil, func(_ beam.EventTime, m Message) {
		res.msgs = append(res.msgs, m)
	})
	require.NoError(t, err)
	require.True(t, cont.ShouldResume(), "an unbounded reader resumes")
	res.wm = we.CurrentWatermark()
	_, residual, err := rt.TrySplit(0)
	require.NoError(t, err)
	res.residual = residual.(streamread.Restriction)
	require.True(t, rt.IsDone())
	return res
}

func TestWatermarkFollowsPublishTimesAndAdvancesWhenIdle(t *testing.T) {
	f := newFakePubSub(t, false)
	fn := &readFn{Subscription: testSub, Cfg: defaultReadConfig()}
	fn.Cfg.Endpoint = f.Addr
	fn.Cfg.MaxOutOfOrderness = time.Minute
	fn.Cfg.IdleWatermark = 50 * time.Millisecond
	require.NoError(t, fn.Setup())
	r := fn.SplitRestriction(nil, fn.CreateInitialRestriction(nil))[0]

	ids := f.publish(3)
	var got []Message
	for len(got) < 3 {
		res := runBundle(t, fn, r)
		got = append(got, res.msgs...)
		r = res.residual
		if len(res.msgs) > 0 {
			newest := res.msgs[0].PublishTime
			for _, m := range res.msgs {
				if m.PublishTime.After(newest) {
					newest = m.PublishTime
				}
			}
			// The watermark moves in whole seconds (WatermarkStep's default).
			require.True(t, !res.wm.Before(newest.Add(-time.Minute).Truncate(time.Second)),
				"watermark %v trails the newest publish time %v by more than MaxOutOfOrderness", res.wm, newest)
			require.True(t, res.wm.Before(newest), "watermark %v passed a message just read", res.wm)
		}
	}
	require.Len(t, got, 3)
	require.Equal(t, int64(3), r.Start)

	// Nothing more arrives: the next bundle acknowledges the three messages
	// and advances the watermark to the current time minus the bound.
	before := time.Now()
	res := runBundle(t, fn, r)
	require.Empty(t, res.msgs)
	require.False(t, res.wm.Before(before.Add(-time.Minute).Truncate(time.Second)), "idle watermark %v", res.wm)
	waitFor(t, "the acknowledgements", func() bool { return f.acked(ids) == 3 })
	closeSessions()
}
