package enrich

import (
	"context"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*schedule)(nil)).Elem())
	register.DoFn5x2[context.Context, *sdf.ManualWatermarkEstimator, *sdf.LockRTracker, schedule, func(beam.EventTime, []byte), sdf.ProcessContinuation, error](&tickFn{})
}

// schedule is the ticks' definition: every Interval milliseconds from Start
// to End (Unix milliseconds).
type schedule struct {
	Start, End, Interval int64
}

func (sc schedule) at(i int64) time.Time {
	return time.UnixMilli(sc.Start + i*sc.Interval)
}

// ticks emits an element at every tick of the schedule, at the wall-clock
// time of the tick, each in the fixed window of the interval that starts at
// it. It is Beam's periodic.Impulse, except that it also ends when the
// process drains its sources (mqttio.Drain), so a local run interrupted with
// Ctrl-C finishes, and that it notices that within a second.
func ticks(s beam.Scope, start, end time.Time, interval time.Duration) beam.PCollection {
	s = s.Scope("Ticks")
	sc := schedule{Start: start.UnixMilli(), End: end.UnixMilli(), Interval: interval.Milliseconds()}
	out := beam.ParDo(s, &tickFn{}, beam.Create(s, sc))
	return beam.WindowInto(s, window.NewFixedWindows(interval), out)
}

// pollEvery bounds how long the ticker sleeps between checks for a drain.
const pollEvery = time.Second

type tickFn struct{}

func (fn *tickFn) CreateInitialRestriction(sc schedule) offsetrange.Restriction {
	return offsetrange.Restriction{Start: 0, End: (sc.End - sc.Start) / sc.Interval}
}

func (fn *tickFn) SplitRestriction(_ schedule, r offsetrange.Restriction) []offsetrange.Restriction {
	return []offsetrange.Restriction{r}
}

func (fn *tickFn) RestrictionSize(_ schedule, r offsetrange.Restriction) float64 {
	return 1
}

func (fn *tickFn) CreateTracker(r offsetrange.Restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(offsetrange.NewTracker(r))
}

func (fn *tickFn) TruncateRestriction(*sdf.LockRTracker, schedule) offsetrange.Restriction {
	return offsetrange.Restriction{}
}

func (fn *tickFn) CreateWatermarkEstimator() *sdf.ManualWatermarkEstimator {
	return &sdf.ManualWatermarkEstimator{}
}

func (fn *tickFn) ProcessElement(ctx context.Context, we *sdf.ManualWatermarkEstimator, rt *sdf.LockRTracker, sc schedule,
	emit func(beam.EventTime, []byte)) (sdf.ProcessContinuation, error) {
	i := rt.GetRestriction().(offsetrange.Restriction).Start
	for {
		if streamread.DrainRequested() {
			rt.TryClaim(rt.GetRestriction().(offsetrange.Restriction).End) // done: nothing more to claim
			return sdf.StopProcessing(), nil
		}
		next := sc.at(i)
		we.UpdateWatermark(next)
		if wait := time.Until(next); wait > 0 {
			return sdf.ResumeProcessingIn(min(wait, pollEvery)), nil
		}
		if !rt.TryClaim(i) {
			return sdf.StopProcessing(), rt.GetError()
		}
		emit(mtime.FromTime(next), nil)
		i++
	}
}
