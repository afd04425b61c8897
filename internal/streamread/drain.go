package streamread

import "sync/atomic"

// drainRequested carries a local run's request to stop its unbounded
// sources cleanly: the readers stop taking input and finish, so that the
// pipeline's final windows fire and the job ends. On local runners (prism,
// direct) the sources run in the process that asks, so a process-wide flag
// reaches them; mqttio.Drain sets it, and the readers (Restriction.Finished)
// and enrich's registry refresh watch it.
var drainRequested atomic.Bool

// RequestDrain asks every source in this process to finish.
func RequestDrain() {
	drainRequested.Store(true)
}

// DrainRequested reports whether RequestDrain was called.
func DrainRequested() bool {
	return drainRequested.Load()
}
