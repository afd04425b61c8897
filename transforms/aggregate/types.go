// Package aggregate windows telemetry readings in event time and computes
// per-device, per-metric statistics for each window, after dropping
// redelivered duplicates.
package aggregate

import (
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Aggregate)(nil)).Elem())
}

// Pane timings of an Aggregate.
const (
	PaneEarly  = "early"
	PaneOnTime = "on_time"
	PaneLate   = "late"
)

// Aggregate is the statistics of one metric of one device over one window.
type Aggregate struct {
	DeviceID    string
	Metric      string
	WindowStart time.Time
	WindowEnd   time.Time
	Count       int64
	Min         float64
	Max         float64
	Sum         float64
	Mean        float64
	// First and Last are the values with the earliest and latest event time.
	First     float64
	Last      float64
	FirstTime time.Time
	LastTime  time.Time
	// Pane is PaneOnTime for the firing at the end of the window and PaneLate
	// for the updates late data makes within the allowed lateness; PaneIndex
	// counts the firings of the window from 0, so a table can keep the row
	// with the highest index.
	Pane      string
	PaneIndex int64
}
