package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

const (
	// readerID is the check's reader; mqttio appends "-0".
	readerID = "refstack-telemetry"
	// commandEvery: a command goes back for every commandEvery-th message.
	commandEvery = 50
	// quiet is how long the check waits without progress before it counts.
	quiet = 20 * time.Second
	// step bounds each step's wait.
	step = 3 * time.Minute
)

type checkConfig struct {
	messages, devices int
	rate              float64
}

type checkResult struct {
	published, received, lost, duplicates int
	commandsSent, commandsDelivered       int
}

// reading is a message of the check: device and sequence number.
type reading struct {
	Device string `json:"device_id"`
	Seq    int    `json:"seq"`
	TS     int64  `json:"ts"`
}

// tally counts what the reader received; prism runs the pipeline in this
// process.
var tally = struct {
	sync.Mutex
	seen       map[int]int
	deliveries int
	commands   int
}{seen: map[int]int{}}

// countFn counts each reading and returns a command for every
// commandEvery-th one, the first time it is seen.
type countFn struct{}

func (countFn) ProcessElement(m mqttio.Message, emit func(mqttio.Publication)) error {
	var r reading
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		return fmt.Errorf("reading on %s: %w", m.Topic, err)
	}
	tally.Lock()
	tally.deliveries++
	tally.seen[r.Seq]++
	first := tally.seen[r.Seq] == 1
	if first && r.Seq%commandEvery == 0 {
		tally.commands++
	}
	tally.Unlock()
	if first && r.Seq%commandEvery == 0 {
		emit(mqttio.Publication{Topic: "devices/" + r.Device + "/commands", Payload: fmt.Appendf(nil, `{"action":"ack","seq":%d}`, r.Seq)})
	}
	return nil
}

func init() { register.DoFn2x1[mqttio.Message, func(mqttio.Publication), error](&countFn{}) }

// connect connects a paho client.
func connect(url, id string, clean bool, ca string, handler paho.MessageHandler) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).SetProtocolVersion(4).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(time.Second).SetDefaultPublishHandler(handler)
	if ca != "" {
		tc, err := certs.ClientTLSConfig(ca, "", "")
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(step) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s to %s: %v", id, url, tok.Error())
	}
	return c, nil
}

// waitToken waits for tok.
func waitToken(tok paho.Token) error {
	if !tok.WaitTimeout(step) {
		return errors.New("timed out")
	}
	return tok.Error()
}

// until polls cond every 100ms until it holds or quiet passes without
// progress() changing.
func until(ctx context.Context, cond func() bool, progress func() int) {
	last, since := progress(), time.Now()
	for !cond() && time.Since(since) < quiet && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if p := progress(); p != last {
			last, since = p, time.Now()
		}
	}
}

func runCheck(ctx context.Context, s *stack, cfg checkConfig) (checkResult, error) {
	ca := s.pki.CAFile
	// The reader's persistent session, made first so that the cluster
	// keeps everything for it.
	prime, err := connect(s.lb.URL(), readerID+"-0", false, ca, nil)
	if err != nil {
		return checkResult{}, err
	}
	if err := waitToken(prime.Subscribe("devices/+/telemetry/#", 1, nil)); err != nil {
		return checkResult{}, fmt.Errorf("prime the reader's session: %w", err)
	}
	prime.Disconnect(100)

	// The devices, behind the edge broker, count the commands they get.
	var mu sync.Mutex
	commands := map[string]bool{}
	var devs []paho.Client
	for i := range cfg.devices {
		dev := fmt.Sprintf("dev-%d", i)
		c, err := connect(s.edge.URL(), dev, false, "", func(_ paho.Client, m paho.Message) {
			mu.Lock()
			commands[string(m.Payload())] = true
			mu.Unlock()
		})
		if err != nil {
			return checkResult{}, err
		}
		defer c.Disconnect(0)
		if err := waitToken(c.Subscribe("devices/"+dev+"/commands", 1, nil)); err != nil {
			return checkResult{}, err
		}
		devs = append(devs, c)
	}
	delivered := func() int { mu.Lock(); defer mu.Unlock(); return len(commands) }

	// The telemetry job's source, reading through the balancer, and its
	// commands going back through it.
	p, sc := beam.NewPipelineWithRoot()
	msgs := mqttio.Read(sc, []string{s.lb.URL()}, []string{"devices/+/telemetry/#"}, mqttio.ClientID(readerID),
		mqttio.QoS(1), mqttio.TLSCAFile(ca), mqttio.InflightWindow(10))
	cmds := beam.ParDo(sc, &countFn{}, msgs)
	mqttio.Write(sc, []string{s.lb.URL()}, cmds, mqttio.ClientID("refstack-commands"), mqttio.QoS(1), mqttio.TLSCAFile(ca))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		_, err := beam.Run(runCtx, "prism", p)
		ran <- err
	}()

	// Publish, kill the node with the reader's queue a third of the way
	// in, bring it back two thirds in.
	fmt.Fprintf(os.Stderr, "refstack: publishing %d QoS 1 messages from %d devices through the edge broker\n", cfg.messages, cfg.devices)
	killed, restarted := -1, make(chan error, 1)
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.rate))
	defer tick.Stop()
	for i := range cfg.messages {
		<-tick.C
		if ctx.Err() != nil {
			return checkResult{}, ctx.Err()
		}
		dev := i % cfg.devices
		payload, _ := json.Marshal(reading{Device: fmt.Sprintf("dev-%d", dev), Seq: i, TS: time.Now().UnixMilli()})
		if err := waitToken(devs[dev].Publish(fmt.Sprintf("devices/dev-%d/telemetry/t", dev), 1, false, payload)); err != nil {
			return checkResult{}, fmt.Errorf("publish %d: %w", i, err)
		}
		switch i {
		case cfg.messages / 3:
			if killed, err = s.killReaderNode(); err != nil {
				return checkResult{}, err
			}
		case 2 * cfg.messages / 3:
			go func() {
				fmt.Fprintf(os.Stderr, "refstack: bringing %s back\n", s.cluster.NodeName(killed))
				restarted <- s.cluster.Start(killed)
			}()
		}
	}
	if err := <-restarted; err != nil {
		return checkResult{}, fmt.Errorf("restart %s: %w", s.cluster.NodeName(killed), err)
	}
	fmt.Fprintf(os.Stderr, "refstack: %s is back; waiting until nothing more arrives for %v\n", s.cluster.NodeName(killed), quiet)
	count := func() (distinct, deliveries, sent int) {
		tally.Lock()
		defer tally.Unlock()
		return len(tally.seen), tally.deliveries, tally.commands
	}
	until(ctx, func() bool { d, _, _ := count(); return d >= cfg.messages }, func() int { _, n, _ := count(); return n })
	until(ctx, func() bool { _, _, sent := count(); return delivered() >= sent }, delivered)
	mqttio.Drain()
	select {
	case err := <-ran:
		if err != nil && !strings.Contains(err.Error(), "context canceled") {
			return checkResult{}, fmt.Errorf("reader pipeline: %w", err)
		}
	case <-time.After(step):
		cancel()
	}
	d, n, sent := count()
	fmt.Fprintf(os.Stderr, "refstack: commands sent %d, delivered to the devices %d\n", sent, delivered())
	return checkResult{published: cfg.messages, received: d, lost: cfg.messages - d, duplicates: n - d,
		commandsSent: sent, commandsDelivered: delivered()}, nil
}

// killReaderNode kills the node that holds the reader's queue (a quorum
// queue's leader) and returns its index.
func (s *stack) killReaderNode() (int, error) {
	qs, err := s.cluster.Queues(0)
	if err != nil {
		return -1, err
	}
	for _, q := range qs {
		if q.Name == "mqtt-subscription-"+readerID+"-0qos1" && q.Node >= 0 {
			fmt.Fprintf(os.Stderr, "refstack: killing %s (SIGKILL), which holds the reader's %s queue\n", s.cluster.NodeName(q.Node), q.Type)
			return q.Node, s.cluster.Kill(q.Node)
		}
	}
	return -1, fmt.Errorf("no queue of the reader in %v", qs)
}
