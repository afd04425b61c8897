// Package drain carries a local run's request to stop its unbounded sources
// cleanly: the readers stop taking input and finish, so that the pipeline's
// final windows fire and the job ends. On local runners (prism, direct) the
// sources run in the process that asks, so a process-wide flag reaches them;
// mqttio.Drain sets it, and mqttio's readers and enrich's registry refresh
// watch it.
package drain

import "sync/atomic"

var requested atomic.Bool

// Request asks every source in this process to finish.
func Request() {
	requested.Store(true)
}

// Requested reports whether Request was called.
func Requested() bool {
	return requested.Load()
}
