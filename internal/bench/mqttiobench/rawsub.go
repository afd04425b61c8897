package main

import (
	"context"
	"errors"
	"flag"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// runRawSub measures a plain paho subscriber: it subscribes, then the
// publishers send -n messages as fast as they can, and the rate is the
// messages received over the time from the first to the last one.
func runRawSub(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rawsub", flag.ContinueOnError)
	var (
		c        common
		buffered bool
	)
	c.register(fs, "raw_paho_qos0", 200_000, 2*time.Second)
	fs.BoolVar(&buffered, "buffered-conn", false, "read the subscriber's connection through a 4 KB buffer (an experiment: paho makes several read syscalls per packet)")
	ctx, stop, err := start(ctx, fs, &c, args)
	if err != nil {
		return err
	}
	defer stop()
	if c.version == 5 {
		if buffered {
			return errors.New("-buffered-conn is for -mqtt-version 3")
		}
		return runRawSub5(ctx, &c)
	}

	id := "mqttiobench-raw-" + runID()
	topic := "bench/" + id
	cnt := newCounter(c.n)
	cpu0 := cpuTime()
	var configure func(*mqtt.ClientOptions)
	if buffered {
		configure = func(o *mqtt.ClientOptions) { o.SetCustomOpenConnectionFn(dialBuffered) }
	}
	sub, err := connect(ctx, c.broker, id, true, configure)
	if err != nil {
		return err
	}
	defer sub.Disconnect(100)
	handler := func(_ mqtt.Client, m mqtt.Message) { cnt.observe(m.Payload(), time.Now()) }
	if err := await(ctx, sub.Subscribe(topic, byte(c.qos), handler)); err != nil {
		return err
	}
	return publishAndCount(ctx, &c, id, topic, cnt, cpu0)
}

// publishAndCount is the end of rawsub, once its subscriber listens: the
// publishers send -n messages, and the figures are those of the counter.
func publishAndCount(ctx context.Context, c *common, id, topic string, cnt *counter, cpu0 time.Duration) error {
	pubs, err := connectPublishers(ctx, c.broker, id, c.publishers)
	if err != nil {
		return err
	}
	defer disconnectAll(pubs)

	logf("%s: publishing %d messages at QoS %d to %s (MQTT %d subscriber)", c.name, c.n, c.qos, c.broker, c.version)
	took, err := publishN(ctx, pubs, topic, byte(c.qos), c.n, c.size, c.pending)
	if err != nil {
		return err
	}
	if complete, _, _ := waitReceived(ctx, cnt, c.n, c.idle, nil); !complete {
		logf("%s: WARNING: received %d of %d messages (nothing more for %v)", c.name, cnt.unique.Load(), c.n, c.idle)
	}
	printFigures(cnt.results(c.name, c.n, rate(int64(c.n), took), cpuTime()-cpu0))
	return nil
}
