package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pollEvery is how often the harness looks at the job's output files.
const pollEvery = 25 * time.Millisecond

// fleetMargin is how long the fleet publishes beyond the job's --duration
// from the job's start: the job starts reading within it.
const fleetMargin = 5 * time.Second

// job holds the flags of the pipeline phase.
type job struct {
	binary   string
	out      string
	window   time.Duration
	duration time.Duration
	inflight int
	readers  int
	grace    time.Duration
	extra    string
}

func (j *job) register(fs *flag.FlagSet) {
	fs.StringVar(&j.binary, "job", "", "the telemetry job's binary, built with go build ./pipelines/telemetry (required)")
	fs.StringVar(&j.out, "out", "", "the job's --output_dir; its log goes to job.log there (required)")
	fs.DurationVar(&j.window, "window", 10*time.Second, "the job's --window (fixed windows)")
	fs.DurationVar(&j.duration, "duration", 60*time.Second, "the job's --duration: how long it reads")
	fs.IntVar(&j.inflight, "inflight", 1000, "the job's --inflight_window: the broker's max_inflight_messages")
	fs.IntVar(&j.readers, "readers", 1, "the job's --readers")
	fs.DurationVar(&j.grace, "grace", 3*time.Minute, "how long the job may run beyond -duration before it is interrupted")
	fs.StringVar(&j.extra, "job-flags", "", "more flags for the job, space-separated (experiments; the latencies assume fixed windows of -window)")
}

func (j *job) check() error {
	switch {
	case j.binary == "" || j.out == "":
		return errors.New("-job and -out are required")
	case j.window < time.Millisecond || j.duration <= 0 || j.grace <= 0:
		return errors.New("-window (at least 1ms), -duration and -grace must be positive")
	case j.inflight < 1 || j.readers < 1:
		return fmt.Errorf("-inflight and -readers must be positive, got %d and %d", j.inflight, j.readers)
	}
	return nil
}

// args are the job's flags.
func (j *job) args(l *load) []string {
	var id [4]byte
	_, _ = rand.Read(id[:])
	return append([]string{
		"--broker=" + l.broker, "--qos=" + strconv.Itoa(l.qos),
		"--client_id=telemetrybench-" + hex.EncodeToString(id[:]),
		"--inflight_window=" + strconv.Itoa(j.inflight), "--readers=" + strconv.Itoa(j.readers),
		"--window=" + j.window.String(), "--duration=" + j.duration.String(),
		"--output_dir=" + j.out, "--progress_every=0",
	}, strings.Fields(j.extra)...)
}

// doneLine is the job's last log line on a local run.
var doneLine = regexp.MustCompile(`telemetry: done in [^:]+: (\d+) messages in`)

// runPipeline runs the telemetry job as a child process while the fleet
// publishes, watches its output files grow, and reports its rate in, its
// peak RSS (the child's maximum resident set size) and its row latencies.
func runPipeline(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	var (
		l load
		j job
	)
	l.register(fs)
	j.register(fs)
	if err := parse(fs, args, func() error { return errors.Join(l.check(), j.check()) }); err != nil {
		return err
	}
	if err := os.MkdirAll(j.out, 0o755); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	logPath := filepath.Join(j.out, "job.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("the job's log: %w", err)
	}
	defer logFile.Close()

	readings := &growth{path: filepath.Join(j.out, "readings.jsonl")}
	aggregates := &growth{path: filepath.Join(j.out, "aggregates.jsonl")}
	cmd := exec.Command(j.binary, j.args(&l)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	logf("job: %s %q", j.binary, cmd.Args[1:])
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the job: %w", err)
	}
	// The fleet publishes while the job reads (it starts reading within a
	// few seconds of its start), not while it fires its last windows.
	fleetCtx, stopFleet := context.WithTimeout(ctx, j.duration+fleetMargin)
	defer stopFleet()
	f := startFleet(fleetCtx, &l)
	runErr := watch(cmd, j.duration+j.grace, readings, aggregates)
	took := time.Since(start)
	pubRate, fleetErr := f.stop()
	if err := errors.Join(runErr, fleetErr); err != nil {
		return fmt.Errorf("%w (the job's log: %s)", err, logPath)
	}
	logf("job: finished in %v", took.Round(time.Millisecond))

	logged, err := os.ReadFile(logPath)
	if err != nil {
		return fmt.Errorf("the job's log: %w", err)
	}
	messagesIn := math.NaN()
	if m := doneLine.FindSubmatch(logged); m != nil {
		messagesIn, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	deadLetters, err := os.ReadFile(filepath.Join(j.out, "dead_letters.jsonl"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the job's dead letters: %w", err)
	}
	res, err := analyze(readings, aggregates, j.window)
	if err != nil {
		return fmt.Errorf("the job's output: %w", err)
	}
	logf("job: read messages from %.1fs to %.1fs after its start", res.firstReceived.Sub(start).Seconds(), res.lastRead.Sub(start).Seconds())
	res.logWindows()
	usage := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	rss := float64(usage.Maxrss) / 1024 // kB on Linux
	cpu := time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
	figs := append(res.figures(j.window),
		figure{"pipeline_messages_in", messagesIn, "%.0f"},
		figure{"dead_letter_rows", float64(bytes.Count(deadLetters, []byte("\n"))), "%.0f"},
		figure{"pipeline_publish_msgs_per_s", pubRate, "%.0f"},
		figure{"pipeline_job_wall_s", took.Seconds(), "%.1f"},
		figure{"pipeline_cpu_s", cpu.Seconds(), "%.1f"},
		figure{"pipeline_cpu_us_per_msg", ratio(float64(cpu.Microseconds()), float64(res.readings)), "%.0f"},
		figure{peakRSS, rss, "%.0f"},
	)
	printFigures(os.Stdout, figs)
	return nil
}

// watch polls the files while cmd runs, until it exits or has run for
// limit; then it interrupts it (so that it drains) and kills it 30 s later.
// It returns the job's failure, if any.
func watch(cmd *exec.Cmd, limit time.Duration, files ...*growth) error {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	poll := func() error {
		now := time.Now()
		for _, g := range files {
			if err := g.poll(now); err != nil {
				return err
			}
		}
		return nil
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.After(limit)
	var kill <-chan time.Time
	for {
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("the job failed: %w", err)
			}
			if kill != nil {
				return fmt.Errorf("the job ran longer than %v and was interrupted", limit)
			}
			return poll()
		case <-tick.C:
			if err := poll(); err != nil {
				_ = cmd.Process.Kill()
				<-exited
				return err
			}
		case <-deadline:
			logf("job: still running after %v; interrupting it", limit)
			_ = cmd.Process.Signal(os.Interrupt)
			kill = time.After(30 * time.Second)
		case <-kill:
			_ = cmd.Process.Kill()
		}
	}
}
