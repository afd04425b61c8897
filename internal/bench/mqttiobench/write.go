package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

func init() {
	register.DoFn2x0[[]byte, func(mqttio.Publication)](&genFn{})
	register.Emitter1[mqttio.Publication]()
	register.DoFn2x0[mqttio.PublishError, func(int, int)](&rejectedFn{})
}

// rejectedFn counts the elements Write refused (there should be none) and
// keys them for a GroupByKey, which gives the stage an output (see
// readFlags.terminal).
type rejectedFn struct{}

func (*rejectedFn) ProcessElement(e mqttio.PublishError, emit func(int, int)) {
	rejected.Add(1)
	emit(0, 1)
}

var rejected atomic.Int64

// runRawPub measures plain paho publishing: -n messages pipelined with up to
// -pending in flight per client, until every one is acknowledged.
func runRawPub(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rawpub", flag.ContinueOnError)
	var c common
	c.register(fs, "raw_paho_publish_qos1", 200_000, 5*time.Second)
	setDefault(fs, "qos", "1")
	setDefault(fs, "publishers", "1")
	ctx, stop, err := start(ctx, fs, &c, args)
	if err != nil {
		return err
	}
	defer stop()
	id := "mqttiobench-rawpub-" + runID()
	if c.version == 5 {
		return rawPub5(ctx, &c, id)
	}
	pubs, err := connectPublishers(ctx, c.broker, id, c.publishers)
	if err != nil {
		return err
	}
	defer disconnectAll(pubs)
	logf("%s: publishing %d messages at QoS %d, %d in flight per client", c.name, c.n, c.qos, c.pending)
	cpu0 := cpuTime()
	took, err := publishN(ctx, pubs, "bench/"+id, byte(c.qos), c.n, c.size, c.pending)
	return printPublished(&c, took, cpu0, err)
}

// printPublished prints the figures of a plain client's publishing.
func printPublished(c *common, took, cpu0 time.Duration, err error) error {
	if err != nil {
		return err
	}
	printFigures([]figure{
		{c.name + "_msgs_per_s", rate(int64(c.n), took), "%.0f"},
		{c.name + "_cpu_us_per_msg", perMsg(cpuTime()-cpu0, c.n), "%.1f"},
	})
	return nil
}

// rawPub5 is rawpub with one plain paho.golang client.
func rawPub5(ctx context.Context, c *common, id string) error {
	if c.publishers != 1 {
		return errors.New("-mqtt-version 5 publishes from one client: give -publishers 1")
	}
	pub, err := connect5(ctx, c.broker, id, nil)
	if err != nil {
		return err
	}
	defer func() { _ = pub.Disconnect(&paho.Disconnect{}) }()
	logf("%s: publishing %d messages at QoS %d, %d in flight (MQTT 5)", c.name, c.n, c.qos, c.pending)
	cpu0 := cpuTime()
	took, err := publishN5(ctx, pub, "bench/"+id, byte(c.qos), c.n, c.size, c.pending)
	return printPublished(c, took, cpu0, err)
}

// genStart is when genFn started emitting (UnixNano).
var genStart atomic.Int64

// genFn emits N Publications to Topic.
type genFn struct {
	N, Size int
	Topic   string
}

func (f *genFn) ProcessElement(_ []byte, emit func(mqttio.Publication)) {
	genStart.CompareAndSwap(0, time.Now().UnixNano())
	for i := range f.N {
		emit(mqttio.Publication{Topic: f.Topic, Payload: dataPayload(i, f.Size)})
	}
}

// runWrite measures mqttio.Write on prism: Impulse -> genFn -> Write, all
// fused into one bundle. The figure is n over the run's wall time minus that
// of the same pipeline generating nothing (the runner's fixed cost).
func runWrite(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("write", flag.ContinueOnError)
	var (
		c        common
		terminal bool
	)
	c.register(fs, "write_qos1", 200_000, 5*time.Second)
	setDefault(fs, "qos", "1")
	fs.BoolVar(&terminal, "terminal", false, "leave Write's error output unused, so that its stage has no outputs (prism then busy-waits during the bundle)")
	ctx, stop, err := start(ctx, fs, &c, args)
	if err != nil {
		return err
	}
	defer stop()
	topic := "bench/mqttiobench-write-" + runID()

	runOnce := func(n int) (time.Duration, beam.PipelineResult, error) {
		p, s := beam.NewPipelineWithRoot()
		pubs := beam.ParDo(s, &genFn{N: n, Size: c.size, Topic: topic}, beam.Impulse(s))
		errs := mqttio.Write(s, []string{c.broker}, pubs, mqttio.QoS(c.qos), mqttio.MaxPending(c.pending), mqttio.ProtocolVersion(c.version))
		if !terminal {
			beam.ParDo0(s, &discardFn{}, beam.GroupByKey(s, beam.ParDo(s, &rejectedFn{}, errs)))
		}
		start := time.Now()
		res, err := beam.Run(ctx, "prism", p)
		return time.Since(start), res, err
	}
	warm, _, err := runOnce(0)
	if err != nil {
		return fmt.Errorf("warm-up pipeline: %w", err)
	}
	logf("%s: warm-up run (0 elements) took %v", c.name, warm.Round(time.Millisecond))

	logf("%s: publishing %d messages at QoS %d through mqttio.Write (MaxPending %d) to %s", c.name, c.n, c.qos, c.pending, c.broker)
	genStart.Store(0)
	cpu0 := cpuTime()
	total, res, err := runOnce(c.n)
	cpu := cpuTime() - cpu0
	if err != nil {
		return fmt.Errorf("pipeline failed: %w", err)
	}
	end := time.Now()
	if got, ok := counterValue(res, "mqttio", "messages_published"); ok && got != int64(c.n) {
		return fmt.Errorf("mqttio.Write reports %d messages published, want %d", got, c.n)
	}
	if n := rejected.Load(); n > 0 {
		return fmt.Errorf("mqttio.Write refused %d publications", n)
	}
	empty, _, err := runOnce(0)
	if err != nil {
		return fmt.Errorf("empty pipeline: %w", err)
	}
	logf("%s: run took %v, the empty run %v; from the first element to the run's end: %.0f msg/s",
		c.name, total.Round(time.Millisecond), empty.Round(time.Millisecond),
		rate(int64(c.n), end.Sub(time.Unix(0, genStart.Load()))))
	printFigures([]figure{
		{c.name + "_msgs_per_s", rate(int64(c.n), total-empty), "%.0f"},
		{c.name + "_pipeline_overhead_s", empty.Seconds(), "%.3f"},
		{c.name + "_cpu_us_per_msg", perMsg(cpu, c.n), "%.1f"},
	})
	return nil
}
