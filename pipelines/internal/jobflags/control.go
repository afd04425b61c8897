package jobflags

import (
	"flag"
	"time"
)

// Control is what every job's flags share about how it runs: the runner,
// how long it reads (--duration, --max_records) and how often a local run
// prints its progress (--progress_every). Jobs embed it in their
// configuration.
type Control struct {
	Duration      time.Duration
	MaxRecords    int64
	ProgressEvery time.Duration
	// Verbose (--verbose) sends Beam's and prism's log lines to standard
	// error instead of the log file (LogFile), and prints errors in full.
	Verbose bool
	// Runner is the runner's short name, set by Validate.
	Runner string

	// logFile is where Start sent Beam's log lines; empty: standard error.
	logFile string
}

// Register defines --duration, --max_records, --progress_every and
// --verbose on fs.
// durationHelp says what --duration does, before "(0: until interrupted)";
// records names what --max_records counts, e.g. "messages".
func (c *Control) Register(fs *flag.FlagSet, durationHelp, records string) {
	fs.DurationVar(&c.Duration, "duration", 0, durationHelp+" (0: until interrupted)")
	fs.Int64Var(&c.MaxRecords, "max_records", 0, "Stop after reading this many "+records+" (0: no limit)")
	fs.DurationVar(&c.ProgressEvery, "progress_every", 5*time.Second, "How often a local run prints its progress (0: never)")
	fs.BoolVar(&c.Verbose, "verbose", false, "Local runs: print Beam's and prism's log lines (and errors in full) on standard error instead of $TMPDIR/mqttbeam-JOB.log")
}

// Validate sets Runner from --runner and checks the runner and the flags
// Register defined; each error names its flag (nil entries are no error).
func (c *Control) Validate() []error {
	c.Runner = Runner()
	errs := []error{
		ValidateRunner(c.Runner, c.Duration > 0 || c.MaxRecords > 0),
		NonNegative("duration", c.Duration),
		NonNegative("progress_every", c.ProgressEvery),
	}
	if c.MaxRecords < 0 {
		errs = append(errs, Errorf("max_records", "%d is negative", c.MaxRecords))
	}
	return errs
}
