package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/devicesim"
)

// fleet is a running simulated fleet.
type fleet struct {
	stats      devicesim.Stats
	start, end time.Time
	cancel     context.CancelFunc
	// done is closed when the fleet has stopped, err set.
	done chan struct{}
	err  error
}

// startFleet starts the load l describes: every device publishing as fast
// as the broker takes the messages, no malformed or late ones, until ctx
// is done or stop is called.
func startFleet(ctx context.Context, l *load) *fleet {
	ctx, cancel := context.WithCancel(ctx)
	f := &fleet{start: time.Now(), cancel: cancel, done: make(chan struct{})}
	cfg := devicesim.Config{Broker: l.broker, Devices: l.devices, Rate: 0, QoS: byte(l.qos), Connections: l.connections}
	go func() {
		defer close(f.done)
		defer func() { f.end = time.Now() }()
		if err := devicesim.Run(ctx, cfg, &f.stats); err != nil {
			f.err = fmt.Errorf("simulated fleet: %w", err)
		} else if ctx.Err() == nil {
			f.err = fmt.Errorf("simulated fleet: stopped publishing after %d messages", f.stats.Published.Load())
		}
	}()
	logf("fleet: %d devices on %d connections publishing at QoS %d to %s as fast as it takes them", l.devices, l.connections, l.qos, l.broker)
	return f
}

// stop stops the fleet (if it has not stopped yet) and returns its publish
// rate while it ran.
func (f *fleet) stop() (msgsPerS float64, err error) {
	f.cancel()
	<-f.done
	if f.err != nil {
		return 0, f.err
	}
	n, took := f.stats.Published.Load(), f.end.Sub(f.start)
	logf("fleet: published %d messages in %v", n, took.Round(time.Millisecond))
	return rate(n, took), nil
}

// payloadTS returns the "ts" field (epoch milliseconds) of a devicesim
// payload without decoding the rest.
func payloadTS(payload []byte) (time.Time, bool) {
	_, rest, ok := bytes.Cut(payload, []byte(`"ts":`))
	if !ok {
		return time.Time{}, false
	}
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(string(bytes.TrimSpace(rest[:end])), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}
