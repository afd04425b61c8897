package mqttio

import (
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
)

// watermarkEstimator holds a reader's watermark, in Beam milliseconds. The
// reader advances it by hand: to each emitted message's event time minus
// MaxOutOfOrderness, and to the current time minus that bound while idle.
type watermarkEstimator struct {
	State int64
}

// CurrentWatermark returns the watermark.
func (e *watermarkEstimator) CurrentWatermark() time.Time {
	return mtime.Time(e.State).ToTime()
}

// advance moves the watermark to t unless it is already later.
func (e *watermarkEstimator) advance(t time.Time) {
	if ms := int64(mtime.FromTime(t)); ms > e.State {
		e.State = ms
	}
}
