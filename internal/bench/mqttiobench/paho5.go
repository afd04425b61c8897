package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// connect5 connects a plain paho.golang (MQTT 5) client with clean start,
// acknowledging what it receives once handle returns, as an MQTT 5
// application would.
func connect5(ctx context.Context, broker, id string, handle func(*paho.Publish)) (*paho.Client, error) {
	u, err := url.Parse(broker)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s as %q: %w", broker, id, err)
	}
	cfg := paho.ClientConfig{Conn: conn}
	if handle != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			handle(pr.Packet)
			return true, nil
		}}
	}
	c := paho.NewClient(cfg)
	cctx, cancel := context.WithTimeout(ctx, pahoTimeout)
	defer cancel()
	if _, err := c.Connect(cctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 60}); err != nil {
		return nil, fmt.Errorf("connecting to %s as %q: %w", broker, id, err)
	}
	return c, nil
}

// runRawSub5 is rawsub with a plain paho.golang subscriber.
func runRawSub5(ctx context.Context, c *common) error {
	id := "mqttiobench-raw5-" + runID()
	topic := "bench/" + id
	cnt := newCounter(c.n)
	cpu0 := cpuTime()
	sub, err := connect5(ctx, c.broker, id, func(p *paho.Publish) { cnt.observe(p.Payload, time.Now()) })
	if err != nil {
		return err
	}
	defer func() { _ = sub.Disconnect(&paho.Disconnect{}) }()
	sctx, cancel := context.WithTimeout(ctx, pahoTimeout)
	defer cancel()
	if _, err := sub.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: byte(c.qos)}}}); err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	return publishAndCount(ctx, c, id, topic, cnt, cpu0)
}

// publishN5 publishes the data messages 0..n-1 to topic from one paho.golang
// client, keeping up to pending publishes in flight (paho.golang's Publish
// waits for its acknowledgement, so each runs in its goroutine), and returns
// how long it took until every one was acknowledged.
func publishN5(ctx context.Context, c *paho.Client, topic string, qos byte, n, size, pending int) (time.Duration, error) {
	start := time.Now()
	slots := make(chan struct{}, pending)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for seq := 0; seq < n; seq++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			pctx, cancel := context.WithTimeout(ctx, pahoTimeout)
			defer cancel()
			if _, err := c.Publish(pctx, &paho.Publish{Topic: topic, QoS: qos, Payload: dataPayload(seq, size)}); err != nil {
				mu.Lock()
				first = errors.Join(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, fmt.Errorf("publishing: %w", first)
	}
	return time.Since(start), nil
}
