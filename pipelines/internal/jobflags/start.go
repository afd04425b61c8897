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
// function that releases it.
func Start(job string, validate func() error) (context.Context, context.CancelFunc) {
	flag.Parse()
	beam.Init()
	// The launcher's settings first: they choose the runner that the flags
	// are validated for.
	if err := errors.Join(ApplyTemplateLauncher(), validate()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid flags:\n%v\n", job, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second interrupt kills the process
	return ctx, stop
}

// Exit ends a job's main: with status 1 and the error on stderr when err is
// not nil.
func Exit(job string, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", job, err)
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
// (local), the first interrupt drains it (StopOnInterrupt), and
// a progress line with lines is printed to stderr every interval (0: never).
func Run(ctx context.Context, job string, p *beam.Pipeline, local bool, interval time.Duration, lines ...progress.Line) (time.Duration, error) {
	if local {
		defer StopOnInterrupt(ctx, job)()
		if interval > 0 {
			reporting, stop := context.WithCancel(context.Background())
			defer stop()
			go progress.Report(reporting, os.Stderr, interval, lines...)
		}
	}
	start := time.Now()
	// The job's context is not ctx: cancelling a running job trips a data
	// race in Beam's harness (see StopOnInterrupt).
	if err := beamx.Run(context.Background(), p); err != nil {
		return time.Since(start), fmt.Errorf("running the job: %w", err)
	}
	return time.Since(start), nil
}
