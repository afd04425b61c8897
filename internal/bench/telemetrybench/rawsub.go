package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// telemetryFilter is the topic filter of the fleet's messages, which the
// job reads by default.
const telemetryFilter = "devices/+/telemetry"

// rawCounter tallies what the plain subscriber receives while the fleet
// publishes.
type rawCounter struct {
	mu          sync.Mutex
	until       time.Time // messages after this (the fleet's stop) are not counted
	n           int64
	first, last time.Time
	latencies   []time.Duration
}

func (c *rawCounter) observe(payload []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.until.IsZero() && now.After(c.until) {
		return
	}
	if c.n == 0 {
		c.first = now
	}
	c.n++
	c.last = now
	if ts, ok := payloadTS(payload); ok {
		c.latencies = append(c.latencies, now.Sub(ts))
	}
}

// stopAt stops counting messages received after t.
func (c *rawCounter) stopAt(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.until = t
}

// figures are the counter's figures, named raw_paho_*.
func (c *rawCounter) figures() []figure {
	c.mu.Lock()
	defer c.mu.Unlock()
	figs := []figure{
		{rawRate, rate(c.n, c.last.Sub(c.first)), "%.0f"},
		{"raw_paho_received", float64(c.n), "%.0f"},
	}
	return append(figs, latencyFigures("publish_to_raw_paho", c.latencies)...)
}

// runRawSub measures a plain paho subscriber (auto-acknowledging, clean
// session) on the fleet's topics: it subscribes, the fleet publishes for
// -duration, and the rate is the messages received from the first to the
// last one before the fleet stopped.
func runRawSub(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rawsub", flag.ContinueOnError)
	var (
		l        load
		duration time.Duration
	)
	l.register(fs)
	fs.DurationVar(&duration, "duration", 20*time.Second, "how long the fleet publishes")
	err := parse(fs, args, func() error {
		if duration <= 0 {
			return fmt.Errorf("-duration must be positive, got %v", duration)
		}
		return l.check()
	})
	if err != nil {
		return err
	}

	var cnt rawCounter
	var id [4]byte
	_, _ = rand.Read(id[:])
	opts := paho.NewClientOptions().AddBroker(l.broker).SetClientID("telemetrybench-raw-" + hex.EncodeToString(id[:])).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second)
	sub := paho.NewClient(opts)
	if err := await(sub.Connect()); err != nil {
		return fmt.Errorf("connecting to %s: %w", l.broker, err)
	}
	defer sub.Disconnect(250)
	handler := func(_ paho.Client, m paho.Message) { cnt.observe(m.Payload(), time.Now()) }
	if err := await(sub.Subscribe(telemetryFilter, byte(l.qos), handler)); err != nil {
		return fmt.Errorf("subscribing to %s: %w", telemetryFilter, err)
	}

	f := startFleet(ctx, &l)
	select {
	case <-time.After(duration):
	case <-f.done:
	}
	cnt.stopAt(time.Now())
	pubRate, err := f.stop()
	if err != nil {
		return err
	}
	figs := append(cnt.figures(), figure{"raw_paho_publish_msgs_per_s", pubRate, "%.0f"})
	printFigures(os.Stdout, figs)
	return nil
}

// await waits for a paho token, at most 30 s.
func await(tok paho.Token) error {
	if !tok.WaitTimeout(30 * time.Second) {
		return fmt.Errorf("no answer from the broker within 30s")
	}
	return tok.Error()
}
