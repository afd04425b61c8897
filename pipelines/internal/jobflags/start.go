package jobflags

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/progress"
)

// Start begins a job's main: it parses the command line (the job registered
// its flags on flag.CommandLine), hands the process to the Beam harness when
// it is a Dataflow worker (beam.Init then never returns), applies the flex
// template launcher's settings (ApplyTemplateLauncher) and checks the flags
// with validate. On invalid flags it prints the errors, each
// naming its flag, and exits with status 2. It returns a context cancelled
// by the first SIGINT or SIGTERM (a second one kills the process) and the
// function that releases it. A local run's Beam and prism log lines go to
// LogFile(job) unless --verbose (c is the job's Control, which validate
// validates).
func Start(job string, c *Control, validate func() error) (context.Context, context.CancelFunc) {
	flag.Parse()
	beam.Init()
	// The launcher's settings first: they choose the runner that the flags
	// are validated for.
	if err := errors.Join(ApplyTemplateLauncher(), validate()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid flags:\n%v\n", job, err)
		os.Exit(2)
	}
	c.logFile = setupLogging(job, c)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second interrupt kills the process
	return ctx, stop
}

// Exit ends a job's main: when err is not nil, with status 1 and one line
// on stderr, the error's root cause and the flags to check (RootCause),
// saying where the full error is (the log file of Start, or stderr with
// --verbose).
func Exit(job string, c *Control, err error) {
	if err != nil {
		report(os.Stderr, job, c, err)
		os.Exit(1)
	}
}

// Build builds a job's pipeline: build adds the job's transforms to the
// root scope. The transforms panic on invalid arguments; the flags were
// validated, so a panic reports a bug, which Build returns as an error.
func Build(build func(s beam.Scope)) (p *beam.Pipeline, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("building the pipeline: %v", r)
		}
	}()
	p, s := beam.NewPipelineWithRoot()
	build(s)
	return p, nil
}

// StopOnInterrupt makes the first interrupt of a local run drain its sources
// (mqttio.Drain: the MQTT and Pub/Sub readers and the registry refresh stop
// taking input, the open windows fire and the job ends); a second interrupt
// kills the process (the caller's signal context stops catching after the
// first). It returns the function to call when the run has ended.
func StopOnInterrupt(ctx context.Context, job string) (ended func()) {
	running, ended := context.WithCancel(context.Background())
	go func() {
		select {
		case <-ctx.Done():
			log.Printf("%s: stopping: reading no more messages and finishing what was read (interrupt again to abort)", job)
			mqttio.Drain()
		case <-running.Done():
		}
	}()
	return ended
}

// Run runs a job's pipeline and returns how long it ran. On a local runner
// (c.Runner), the first interrupt drains it (StopOnInterrupt), and a
// progress line of report is printed every c.ProgressEvery (0: never), where
// the job's log lines go (standard output after Start). The error of a failed run gives its root cause to RootCause.
func Run(ctx context.Context, job string, p *beam.Pipeline, c *Control, report progress.Report) (time.Duration, error) {
	if IsLocal(c.Runner) {
		defer StopOnInterrupt(ctx, job)()
		if c.ProgressEvery > 0 {
			reporting, stop := context.WithCancel(context.Background())
			defer stop()
			go report.Run(reporting, log.Writer(), c.ProgressEvery)
		}
	}
	start := time.Now()
	// The job's context is not ctx: cancelling a running job trips a data
	// race in Beam's harness (see StopOnInterrupt).
	if err := beamx.Run(context.Background(), p); err != nil {
		return time.Since(start), &runError{err}
	}
	return time.Since(start), nil
}
