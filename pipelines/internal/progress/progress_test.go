package progress

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/assert"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

var runs atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("test_%s_%d", prefix, runs.Add(1))
}

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func TestCountAndFormat(t *testing.T) {
	// Tallies live as long as the process: names of their own keep runs
	// with -count apart.
	in, out, remote := uniqueName("in"), uniqueName("out"), uniqueName("remote")
	p, s := beam.NewPipelineWithRoot()
	Count(s, in, beam.Create(s, 1, 2, 3, 4))
	CountLocal(s, true, out, beam.Create(s, "a"))
	CountLocal(s, false, remote, beam.Create(s, "b", "c"))
	ptest.RunAndValidate(t, p)
	assert.Zero(t, Value(remote), "CountLocal counted on a remote run")

	r := Report{Lines: []Line{{Name: in, Label: "in", Rate: true}, {Name: out, Label: "out"}}, Readers: noReaders}
	last := []int64{2, 0}
	assert.Equal(t, "progress: in 1 msg/s (4) | out 1", r.Format(last, 2*time.Second, time.Now()))
	assert.Equal(t, []int64{4, 1}, last)
}

func noReaders() []mqttio.ReaderState { return nil }

// The line says how far the watermark trails wall time and which window
// waits for it, or, while a reader is not connected, why.
func TestReadersWatermarkAndOpenWindow(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 1, 40, 0, time.Local)
	states := []mqttio.ReaderState{
		{ClientID: "job-0", Connected: true, Watermark: now.Add(-3 * time.Second)},
		{ClientID: "job-1", Connected: true, Watermark: now.Add(-2500 * time.Millisecond)},
	}
	r := Report{Window: Grid(time.Minute, 0), Readers: func() []mqttio.ReaderState { return states }}
	assert.Equal(t, "progress: watermark 3s behind | oldest open window 12:01:00-12:02:00 (closes in 23s)", r.Format(nil, time.Second, now))

	r.Window = nil
	states[0].Watermark = time.Time{} // not started: the other reader's counts
	assert.Equal(t, "progress: watermark 2.5s behind", r.Format(nil, time.Second, now))

	states[1] = mqttio.ReaderState{ClientID: "job-1", Err: errors.New("connecting to tcp://127.0.0.1:1: connection refused")}
	assert.Equal(t, "progress: 1 of 2 readers not connected: connecting to tcp://127.0.0.1:1: connection refused", r.Format(nil, time.Second, now))
	states = states[1:]
	assert.Equal(t, "progress: not connected: connecting to tcp://127.0.0.1:1: connection refused", r.Format(nil, time.Second, now))
}

// Grid finds the oldest window that holds a time, for fixed and sliding
// windows.
func TestGrid(t *testing.T) {
	// On the epoch's day, where Beam's windows are aligned.
	at := func(s string) time.Time {
		v, err := time.Parse(time.DateTime, "1970-01-02 "+s)
		assert.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		size, period time.Duration
		t, start     string
	}{
		{time.Minute, 0, "12:01:37", "12:01:00"},
		{time.Minute, 0, "12:01:00", "12:01:00"},
		{7 * time.Second, 0, "00:00:20", "00:00:15"}, // 86415 s after the epoch: a multiple of 7,
		{time.Minute, 10 * time.Second, "12:01:37", "12:00:40"},
		{time.Minute, 10 * time.Second, "12:01:40", "12:00:50"},
	} {
		start, end := Grid(tc.size, tc.period)(at(tc.t))
		assert.Equal(t, at(tc.start), start.UTC(), "%+v", tc)
		assert.Equal(t, tc.size, end.Sub(start), "%+v", tc)
	}
}
