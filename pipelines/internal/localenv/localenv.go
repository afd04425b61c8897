// Package localenv starts what a job's local run needs in place of the
// systems around it, so that every job runs with no flags: the in-process
// MQTT broker (internal/embeddedbroker) with simulated devices
// (internal/devicesim), an in-process Pub/Sub server (pstest) with its topics
// and subscriptions, a simulated backend publishing to Pub/Sub, and
// recorders that write what the job sent (to Pub/Sub or MQTT) to JSON lines
// files a user can read while it runs.
package localenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttbeam/mqttbeam/internal/devicesim"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// Env is where a job connects and what its local run started; Close
// stops that, last first.
type Env struct {
	// Brokers are the MQTT brokers' URLs: the flag's, or the embedded
	// broker's once Broker started it.
	Brokers []string
	// PubSubEndpoint is the Pub/Sub endpoint: the flag's, or the embedded
	// server's once PubSub started it.
	PubSubEndpoint string

	closers []func()
}

// New is the Env of a job's --broker and --pubsub_endpoint flags, before
// anything starts.
func New(brokers []string, pubsubEndpoint string) *Env {
	return &Env{Brokers: brokers, PubSubEndpoint: pubsubEndpoint}
}

// CloseOnError closes the Env when *err is not nil: defer it in the
// function that starts the Env's parts.
func (e *Env) CloseOnError(err *error) {
	if *err != nil {
		e.Close()
	}
}

// OnClose adds fn to what Close runs.
func (e *Env) OnClose(fn func()) { e.closers = append(e.closers, fn) }

// Close stops everything the Env started, the last started first.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// Go runs fn in a goroutine with a context that Close cancels, and waits
// for it on Close. An error fn returns before Close is logged with what.
func (e *Env) Go(ctx context.Context, what string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			log.Printf("%s stopped: %v", what, err)
		}
	})
	e.OnClose(func() { cancel(); wg.Wait() })
}

// Broker starts the in-process MQTT broker, which becomes Brokers, and
// returns its URL.
func (e *Env) Broker() (string, error) {
	b, err := embeddedbroker.Start()
	if err != nil {
		return "", fmt.Errorf("--broker=embedded: %w", err)
	}
	e.OnClose(func() { _ = b.Close() })
	e.Brokers = []string{b.URL()}
	return b.URL(), nil
}

// Devices runs a simulated fleet (cfg.Broker set) until Close, logging
// what it does as job.
func (e *Env) Devices(ctx context.Context, job string, cfg devicesim.Config) {
	e.Go(ctx, job+": simulated devices", func(ctx context.Context) error { return devicesim.Run(ctx, cfg, nil) })
	log.Printf("%s: embedded broker at %s, %d simulated devices publishing %v msg/s each to devices/{id}/telemetry",
		job, cfg.Broker, cfg.Devices, cfg.Rate)
}

// PubSub starts an in-process Pub/Sub server (pstest) with topic and, for
// each of subscriptions, a subscription to it (full resource names), and
// makes its host:port PubSubEndpoint.
func (e *Env) PubSub(topic string, subscriptions ...string) (*PubSub, error) {
	srv := pstest.NewServer()
	e.OnClose(func() { _ = srv.Close() })
	ctx := context.Background()
	if _, err := srv.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		return nil, fmt.Errorf("--pubsub_endpoint=embedded: creating %s: %w", topic, err)
	}
	for _, sub := range subscriptions {
		if _, err := srv.GServer.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 10}); err != nil {
			return nil, fmt.Errorf("--pubsub_endpoint=embedded: creating %s: %w", sub, err)
		}
	}
	e.PubSubEndpoint = srv.Addr
	return &PubSub{env: e, srv: srv, Addr: srv.Addr}, nil
}

// PubSub is an in-process Pub/Sub server.
type PubSub struct {
	env *Env
	srv *pstest.Server
	// Addr is the server's host:port.
	Addr string
}

// Message is a Pub/Sub message as a recorder writes it: data as text.
type Message struct {
	ID          string            `json:"id"`
	Data        string            `json:"data"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	OrderingKey string            `json:"ordering_key,omitempty"`
	PublishTime time.Time         `json:"publish_time"`
}

// Record writes the messages of subscription to path as JSON lines
// (Message), as they arrive, until Close, which logs their number as job.
func (p *PubSub) Record(ctx context.Context, job, subscription, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var count atomic.Int64
	p.env.OnClose(func() { closeRecord(job, f, count.Load()) })
	write := func(m *pubsubpb.PubsubMessage) error {
		count.Add(1)
		return writeLine(f, Message{ID: m.MessageId, Data: text(m.Data), Attributes: m.Attributes,
			OrderingKey: m.OrderingKey, PublishTime: m.PublishTime.AsTime().UTC()})
	}
	p.env.Go(ctx, "recording "+subscription, func(ctx context.Context) error {
		// Polled: pstest's Pull without ReturnImmediately waits a fixed time.
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := p.drain(ctx, subscription, write); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				// What the job published before it ended.
				return p.drain(context.Background(), subscription, write)
			case <-tick.C:
			}
		}
	})
	return nil
}

// drain pulls and acknowledges what subscription holds, handing each
// message to fn.
func (p *PubSub) drain(ctx context.Context, subscription string, fn func(*pubsubpb.PubsubMessage) error) error {
	for {
		resp, err := p.srv.GServer.Pull(ctx, &pubsubpb.PullRequest{Subscription: subscription, MaxMessages: 1000, ReturnImmediately: true})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(resp.ReceivedMessages) == 0 {
			return nil
		}
		ids := make([]string, len(resp.ReceivedMessages))
		for i, m := range resp.ReceivedMessages {
			if err := fn(m.Message); err != nil {
				return err
			}
			ids[i] = m.AckId
		}
		if _, err := p.srv.GServer.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: subscription, AckIds: ids}); err != nil {
			return err
		}
	}
}

// Backend publishes next(i) to topic every interval (i = 0, 1, ...) until
// Close, as a backend service would.
func (p *PubSub) Backend(ctx context.Context, job, topic string, every time.Duration, next func(i int) (data []byte, attrs map[string]string)) {
	p.env.Go(ctx, job+": simulated backend", func(ctx context.Context) error {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			data, attrs := next(i)
			p.srv.Publish(topic, data, attrs)
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	})
	log.Printf("%s: embedded Pub/Sub at %s, a simulated backend publishing to %s every %v", job, p.Addr, topic, every)
}

// MQTTMessage is an MQTT message as RecordMQTT writes it: payload as text.
type MQTTMessage struct {
	Topic      string    `json:"topic"`
	Payload    string    `json:"payload"`
	QoS        byte      `json:"qos"`
	Retained   bool      `json:"retained,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// RecordMQTT subscribes to filter on the broker at url (QoS 1) and writes
// the messages to path as JSON lines (MQTTMessage) until Close, as the
// devices would receive them; Close logs their number as job.
func (e *Env) RecordMQTT(job, url, filter, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var count atomic.Int64
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("mqttbeam-local-devices").SetAutoReconnect(true)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		_ = f.Close()
		return errors.Join(errors.New("recording MQTT: connecting to "+url), tok.Error())
	}
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		count.Add(1)
		_ = writeLine(f, MQTTMessage{Topic: m.Topic(), Payload: text(m.Payload()), QoS: m.Qos(), Retained: m.Retained(), ReceivedAt: time.Now().UTC()})
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.Disconnect(0)
		_ = f.Close()
		return errors.Join(errors.New("recording MQTT: subscribing to "+filter), tok.Error())
	}
	e.OnClose(func() {
		c.Disconnect(250)
		mu.Lock()
		defer mu.Unlock()
		closeRecord(job, f, count.Load())
	})
	return nil
}

// closeRecord closes a recorder's file and says what it holds.
func closeRecord(job string, f *os.File, n int64) {
	if err := f.Close(); err != nil {
		log.Printf("%s: writing %s: %v", job, f.Name(), err)
		return
	}
	log.Printf("%s: %d messages received by the other side, in %s", job, n, f.Name())
}

// writeLine appends v to f as one JSON line.
func writeLine(f *os.File, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	return err
}

// text is b as valid UTF-8 text.
func text(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }
