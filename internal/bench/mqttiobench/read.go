package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

func init() {
	register.DoFn1x0[mqttio.Message](&countFn{})
	register.DoFn2x0[mqttio.Message, func(int, int)](&countKVFn{})
	register.Emitter2[int, int]()
	register.DoFn2x0[int, func(*int) bool](&discardFn{})
	register.Iter1[int]()
}

// active is the counter the pipeline's countFn feeds. Prism runs the SDK
// harness in this process (loopback), so the DoFn and the benchmark share it.
var active atomic.Pointer[counter]

// bundles counts the bundles of the counting step (each is one bundle of
// mqttio.Read's reader).
var bundles atomic.Int64

// countFn counts the messages that reach the step after mqttio.Read, timing
// them when they arrive there.
type countFn struct{}

func (*countFn) StartBundle() { bundles.Add(1) }

func (*countFn) ProcessElement(m mqttio.Message) {
	active.Load().observe(m.Payload, time.Now())
}

// countKVFn is countFn with an output, which it never uses: see
// readFlags.terminal.
type countKVFn struct{}

func (*countKVFn) StartBundle(func(int, int)) { bundles.Add(1) }

func (*countKVFn) ProcessElement(m mqttio.Message, _ func(int, int)) {
	active.Load().observe(m.Payload, time.Now())
}

type discardFn struct{}

func (*discardFn) ProcessElement(int, func(*int) bool) {}

// readFlags are the mqttio.Read settings the read phases take.
type readFlags struct {
	// terminal makes the counting step the last of the pipeline, so that the
	// stage prism fuses from Read and it has no outputs. Otherwise the
	// counting step has an (empty) output that goes through a GroupByKey, as
	// the reads of real pipelines do. Prism v2.77.0 busy-waits while a bundle
	// of a stage without outputs runs (stage.Execute's progress loop selects
	// on the already closed DataWait channel), which burns a core for the
	// whole of every Read bundle.
	terminal    bool
	window      int
	maxBuffered int
	bundleSize  int
	bundleTime  time.Duration
}

func (r *readFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&r.terminal, "terminal", false, "make the counting step the pipeline's last (prism then busy-waits during every Read bundle)")
	fs.IntVar(&r.window, "window", 20, "mqttio.InflightWindow: the broker's max_inflight_messages (0: none, the default window: with -mqtt-version 5 the broker's)")
	fs.IntVar(&r.maxBuffered, "max-buffered", 0, "mqttio.MaxBuffered (0: mqttio's default)")
	fs.IntVar(&r.bundleSize, "bundle-size", 0, "records of mqttio.MaxBundle (0: mqttio's default)")
	fs.DurationVar(&r.bundleTime, "bundle-time", 0, "duration of mqttio.MaxBundle (0: mqttio's default)")
}

func (r *readFlags) options() []mqttio.ReadOption {
	var opts []mqttio.ReadOption
	if r.window > 0 {
		opts = append(opts, mqttio.InflightWindow(r.window))
	}
	if r.maxBuffered > 0 {
		opts = append(opts, mqttio.MaxBuffered(r.maxBuffered))
	}
	if r.bundleSize > 0 || r.bundleTime > 0 {
		size, d := r.bundleSize, r.bundleTime
		if size <= 0 {
			size = 10000
		}
		if d <= 0 {
			d = 500 * time.Millisecond
		}
		opts = append(opts, mqttio.MaxBundle(size, d))
	}
	return opts
}

// readPipeline reads limit messages from topic into countFn.
func readPipeline(c *common, rf *readFlags, clientID, topic string, limit int64) *beam.Pipeline {
	p, s := beam.NewPipelineWithRoot()
	opts := append([]mqttio.ReadOption{
		mqttio.QoS(c.qos),
		mqttio.ProtocolVersion(c.version),
		mqttio.ClientID(clientID),
		mqttio.MaxRecords(limit),
		mqttio.MaxReadTime(c.timeout), // ends the read even if messages are lost
	}, rf.options()...)
	msgs := mqttio.Read(s, []string{c.broker}, []string{topic}, opts...)
	if rf.terminal {
		beam.ParDo0(s, &countFn{}, msgs)
	} else {
		beam.ParDo0(s, &discardFn{}, beam.GroupByKey(s, beam.ParDo(s, &countKVFn{}, msgs)))
	}
	return p
}

// pipelineRun is a pipeline running on prism in the background.
type pipelineRun struct {
	done    chan error
	cancel  context.CancelFunc
	started time.Time
	ended   time.Time
	result  beam.PipelineResult
}

func runAsync(ctx context.Context, p *beam.Pipeline) *pipelineRun {
	ctx, cancel := context.WithCancel(ctx)
	r := &pipelineRun{done: make(chan error, 1), cancel: cancel, started: time.Now()}
	go func() {
		res, err := beam.Run(ctx, "prism", p)
		r.ended, r.result = time.Now(), res
		r.done <- err
	}()
	return r
}

// stop cancels the pipeline and waits (boundedly) for it to end.
func (r *pipelineRun) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("the pipeline did not end within 30s of its cancellation")
	}
}

// logMetrics logs the pipeline's mqttio counters.
func (r *pipelineRun) logMetrics(name string) {
	if r.result == nil {
		return
	}
	var parts []string
	for _, c := range r.result.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == "mqttio" {
			parts = append(parts, fmt.Sprintf("%s=%d", c.Key.Name, c.Result()))
		}
	}
	logf("%s: pipeline metrics: %s", name, strings.Join(parts, " "))
}

// counterValue sums a counter of the pipeline's metrics over its steps.
func counterValue(res beam.PipelineResult, namespace, name string) (int64, bool) {
	if res == nil {
		return 0, false
	}
	var sum int64
	found := false
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == namespace && c.Key.Name == name {
			sum += c.Result()
			found = true
		}
	}
	return sum, found
}

// runRead measures mqttio.Read on prism. Probes published every 10ms tell
// when the reader is subscribed; then exactly enough further probes are
// published for the reader to receive -probes of them in all, and the data
// messages follow. The read is bounded by MaxRecords(probes + n), so the
// pipeline ends by itself once everything has arrived.
func runRead(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	var (
		c      common
		rf     readFlags
		probes int
	)
	c.register(fs, "read_qos0", 200_000, 5*time.Second)
	rf.register(fs)
	fs.IntVar(&probes, "probes", 2000, "probe messages the reader receives before the data (the reader must subscribe within probes*10ms)")
	ctx, stop, err := start(ctx, fs, &c, args)
	if err != nil {
		return err
	}
	defer stop()
	if probes < 1 {
		return errors.New("-probes must be at least 1")
	}

	id := "mqttiobench-read-" + runID()
	topic := "bench/" + id
	cnt := newCounter(c.n)
	active.Store(cnt)
	cpu0 := cpuTime()
	pubs, err := connectPublishers(ctx, c.broker, id, c.publishers)
	if err != nil {
		return err
	}
	defer disconnectAll(pubs)

	logf("%s: starting the pipeline (MQTT %d, QoS %d, InflightWindow %d) against %s", c.name, c.version, c.qos, rf.window, c.broker)
	run := runAsync(ctx, readPipeline(&c, &rf, id, topic, int64(probes+c.n)))
	defer run.cancel()
	if err := probe(ctx, pubs[0], topic, byte(c.qos), probes, cnt, run.done); err != nil {
		if errors.Is(err, errPipelineEnded) {
			return err
		}
		return errors.Join(err, run.stop())
	}
	logf("%s: reader subscribed after %v; publishing %d messages", c.name, time.Since(run.started).Round(time.Millisecond), c.n)
	took, err := publishN(ctx, pubs, topic, byte(c.qos), c.n, c.size, c.pending)
	if err != nil {
		return errors.Join(err, run.stop())
	}
	logf("%s: published in %v", c.name, took.Round(time.Millisecond))

	var runErr error
	complete, endErr, ended := waitReceived(ctx, cnt, c.n, c.idle, run.done)
	switch {
	case ended:
		runErr = endErr
	case complete:
		select {
		case runErr = <-run.done:
		case <-time.After(time.Minute):
			logf("%s: WARNING: all messages arrived but the pipeline did not end within a minute; cancelling it", c.name)
			runErr = errors.Join(errors.New("the pipeline did not end after reading MaxRecords messages"), run.stop())
		}
	default:
		logf("%s: WARNING: received %d of %d messages (nothing more for %v); cancelling the pipeline", c.name, cnt.unique.Load(), c.n, c.idle)
		if err := run.stop(); err != nil && ctx.Err() == nil {
			logf("%s: pipeline ended with: %v", c.name, err)
		}
	}
	if runErr != nil {
		return fmt.Errorf("pipeline failed: %w", runErr)
	}
	if got := cnt.probes.Load(); got != int64(probes) {
		logf("%s: WARNING: the reader received %d probes, want %d", c.name, got, probes)
	}
	run.logMetrics(c.name)
	figs := cnt.results(c.name, c.n, rate(int64(c.n), took), cpuTime()-cpu0)
	figs = append(figs, figure{c.name + "_bundles", float64(bundles.Load()), "%.0f"})
	if !run.ended.IsZero() {
		figs = append(figs, figure{c.name + "_pipeline_s", run.ended.Sub(run.started).Seconds(), "%.2f"})
	}
	printFigures(figs)
	return nil
}

var errPipelineEnded = errors.New("the pipeline ended before the reader received a probe")

// probe publishes probes until the reader has seen one, then tops them up so
// that the reader receives exactly want probes. Messages published after the
// subscription reach the reader in order, so the reader receives the probes
// from the first one it sees to the last one published.
func probe(ctx context.Context, pub mqtt.Client, topic string, qos byte, want int, cnt *counter, ended <-chan error) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for cnt.probes.Load() == 0 {
		if next >= want {
			return fmt.Errorf("the reader did not receive any of %d probes published 10ms apart", want)
		}
		if err := await(ctx, pub.Publish(topic, qos, false, probePayload(next))); err != nil {
			return fmt.Errorf("publishing probe: %w", err)
		}
		next++
		select {
		case <-tick.C:
		case err := <-ended:
			return fmt.Errorf("%w: %v", errPipelineEnded, err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the reader to subscribe: %w", ctx.Err())
		}
	}
	first := int(cnt.minProbe.Load())
	if first >= next {
		return fmt.Errorf("the reader saw probe %d, but only %d were published", first, next)
	}
	for delivered := next - first; delivered < want; delivered++ {
		if err := await(ctx, pub.Publish(topic, qos, false, probePayload(next))); err != nil {
			return fmt.Errorf("publishing probe: %w", err)
		}
		next++
	}
	if next-first > want {
		return fmt.Errorf("the reader took too long to subscribe: it will receive %d probes, more than -probes %d", next-first, want)
	}
	return nil
}

// runBacklogFill primes the persistent session of the reader that
// backlog-read starts (client id {id}-0, clean session off, subscribed at
// QoS 1) and publishes -n QoS 1 messages for it while it is offline.
func runBacklogFill(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backlog-fill", flag.ContinueOnError)
	var (
		c  common
		id string
	)
	c.register(fs, "backlog", 1_000_000, 5*time.Second)
	fs.StringVar(&id, "id", "", "client id of the Read (the reader's is {id}-0) (required)")
	setDefault(fs, "qos", "1")
	ctx, stop, err := start(ctx, fs, &c, args)
	if err != nil {
		return err
	}
	defer stop()
	if id == "" {
		return errors.New("-id is required")
	}
	if c.qos == 0 {
		return errors.New("a backlog needs QoS 1 or 2")
	}
	topic := "bench/" + id
	reader, err := connect(ctx, c.broker, id+"-0", false, nil)
	if err != nil {
		return err
	}
	if err := await(ctx, reader.Subscribe(topic, byte(c.qos), nil)); err != nil {
		return fmt.Errorf("priming the session: %w", err)
	}
	reader.Disconnect(100)

	pubs, err := connectPublishers(ctx, c.broker, id, c.publishers)
	if err != nil {
		return err
	}
	defer disconnectAll(pubs)
	logf("%s: publishing %d QoS %d messages for the offline reader %s-0", c.name, c.n, c.qos, id)
	took, err := publishN(ctx, pubs, topic, byte(c.qos), c.n, c.size, c.pending)
	if err != nil {
		return err
	}
	printFigures([]figure{{c.name + "_publish_msgs_per_s", rate(int64(c.n), took), "%.0f"}})
	return nil
}

// runBacklogRead reads the backlog backlog-fill left with mqttio.Read and
// reports the rate and the process's peak RSS.
func runBacklogRead(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backlog-read", flag.ContinueOnError)
	var (
		c  common
		rf readFlags
		id string
	)
	c.register(fs, "backlog", 1_000_000, 30*time.Second)
	rf.register(fs)
	fs.StringVar(&id, "id", "", "client id given to backlog-fill (required)")
	setDefault(fs, "qos", "1")
	ctx, stop, err := start(ctx, fs, &c, args)
	if err != nil {
		return err
	}
	defer stop()
	if id == "" {
		return errors.New("-id is required")
	}
	cnt := newCounter(c.n)
	active.Store(cnt)
	before, err := memKB("VmHWM")
	if err != nil {
		return err
	}
	sampler := sampleRSS(cnt)
	defer sampler.stop()

	logf("%s: reading %d messages (QoS %d, InflightWindow %d) from %s; peak RSS before %d MB", c.name, c.n, c.qos, rf.window, c.broker, before/1024)
	run := runAsync(ctx, readPipeline(&c, &rf, id, "bench/"+id, int64(c.n)))
	defer run.cancel()
	complete, endErr, ended := waitReceived(ctx, cnt, c.n, c.idle, run.done)
	var runErr error
	switch {
	case ended:
		runErr = endErr
	case complete:
		select {
		case runErr = <-run.done:
		case <-time.After(time.Minute):
			runErr = errors.Join(errors.New("the pipeline did not end after reading MaxRecords messages"), run.stop())
		}
	default:
		logf("%s: WARNING: received %d of %d messages (nothing more for %v); cancelling the pipeline", c.name, cnt.unique.Load(), c.n, c.idle)
		_ = run.stop()
	}
	if runErr != nil {
		return fmt.Errorf("pipeline failed: %w", runErr)
	}
	sampler.stop()
	after, err := memKB("VmHWM")
	if err != nil {
		return err
	}
	run.logMetrics(c.name)
	logf("%s: RSS every 2s (MB@messages received): %s", c.name, sampler.summary())
	printFigures([]figure{
		{c.name + "_read_msgs_per_s", cnt.rate(), "%.0f"},
		{c.name + "_received", float64(cnt.unique.Load()), "%.0f"},
		{c.name + "_lost", float64(int64(c.n) - cnt.unique.Load()), "%.0f"},
		{c.name + "_duplicates", float64(cnt.dups.Load()), "%.0f"},
		{c.name + "_bundles", float64(bundles.Load()), "%.0f"},
		{c.name + "_rss_before_mb", float64(before) / 1024, "%.1f"},
		{c.name + "_peak_rss_mb", float64(after) / 1024, "%.1f"},
		{c.name + "_rss_increase_mb", float64(after-before) / 1024, "%.1f"},
	})
	return nil
}

// rssSampler samples the process's RSS while a phase runs.
type rssSampler struct {
	done    chan struct{}
	stopped chan struct{}
	samples []string
}

func sampleRSS(cnt *counter) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(s.stopped)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			if kb, err := memKB("VmRSS"); err == nil {
				s.samples = append(s.samples, fmt.Sprintf("%d@%d", kb/1024, cnt.unique.Load()))
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	<-s.stopped
}

func (s *rssSampler) summary() string { return strings.Join(s.samples, " ") }
