package interop

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

// timeout bounds every wait of the checks.
const timeout = 60 * time.Second

// inbox gathers the messages a pipeline's reads emit, by key. Pipelines on
// prism run in this process.
type inbox struct {
	mu   sync.Mutex
	msgs map[string][]mqttio.Message
}

var received = inbox{msgs: map[string][]mqttio.Message{}}

func (in *inbox) add(key string, m mqttio.Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs[key] = append(in.msgs[key], m)
}

// get returns a copy of what key has received.
func (in *inbox) get(key string) []mqttio.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]mqttio.Message(nil), in.msgs[key]...)
}

// keepFn puts each message into the inbox under Key.
type keepFn struct{ Key string }

func (f *keepFn) ProcessElement(m mqttio.Message) { received.add(f.Key, m) }

func init() { register.DoFn1x0[mqttio.Message](&keepFn{}) }

// pipeline builds one pipeline of reads whose messages go to the inbox.
type pipeline struct {
	t *testing.T
	p *beam.Pipeline
	s beam.Scope
}

func newPipeline(t *testing.T) *pipeline {
	p, s := beam.NewPipelineWithRoot()
	return &pipeline{t: t, p: p, s: s}
}

// keep sends the messages of col to the inbox under a key for this test
// and name, and returns the key.
func (p *pipeline) keep(name string, col beam.PCollection) string {
	key := p.t.Name() + "/" + name
	beam.ParDo0(p.s, &keepFn{Key: key}, col)
	return key
}

// running is a pipeline running in the background.
type running struct {
	done chan struct{} // closed when the pipeline has ended
	err  error         // its result, set before done is closed
}

// run runs the pipeline on prism until it ends or the test does (which
// cancels it and waits for it to end).
func (p *pipeline) run() *running {
	ctx, cancel := context.WithTimeout(context.Background(), 3*timeout)
	r := &running{done: make(chan struct{})}
	go func() {
		_, r.err = beam.Run(ctx, "prism", p.p)
		close(r.done)
	}()
	p.t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// await waits until key has received n messages that match, failing the
// test if the pipeline ends first or the wait times out.
func await(t *testing.T, key string, n int, match func(mqttio.Message) bool, r *running) []mqttio.Message {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var got []mqttio.Message
		for _, m := range received.get(key) {
			if match(m) {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-tick.C:
		case <-r.done:
			require.FailNowf(t, "pipeline ended", "%s has %d of %d messages: %v", key, len(got), n, r.err)
		case <-deadline:
			require.FailNowf(t, "timed out", "%s has %d of %d messages", key, len(got), n)
		}
	}
}

// payloadPrefix matches messages whose payload starts with prefix.
func payloadPrefix(prefix string) func(mqttio.Message) bool {
	return func(m mqttio.Message) bool { return strings.HasPrefix(string(m.Payload), prefix) }
}

// distinct returns the distinct payloads of msgs.
func distinct(msgs []mqttio.Message) map[string]bool {
	out := map[string]bool{}
	for _, m := range msgs {
		out[string(m.Payload)] = true
	}
	return out
}

// client connects a paho client to url as tg's user and disconnects it
// when the test ends. clean false keeps a persistent session.
func client(t *testing.T, tg *target, url, clientID string, clean bool) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(clean).
		SetUsername(tg.user).SetPassword(tg.password).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(timeout)
	c := paho.NewClient(o)
	wait(t, c.Connect())
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// wait waits for tok, failing the test on an error or a timeout.
func wait(t *testing.T, tok paho.Token) {
	t.Helper()
	require.True(t, tok.WaitTimeout(timeout), "paho token timed out")
	require.NoError(t, tok.Error())
}

// publish publishes n messages "{prefix}-{i}" to topic at qos through c,
// one after the other: brokers may disconnect a client that has more QoS 2
// messages in flight than their window (Mosquitto does).
func publish(t *testing.T, c paho.Client, topic string, qos byte, retained bool, prefix string, n int) {
	t.Helper()
	for i := range n {
		wait(t, c.Publish(topic, qos, retained, fmt.Sprintf("%s-%d", prefix, i)))
	}
}

// prime creates the persistent session a reader with clientID will use,
// subscribed to filter at QoS 1, so that what is published next waits for
// it on the broker. At MQTT 5 the session is an MQTT 5 one that expires a
// day after it was left, as mqttio's readers' do.
func prime(t *testing.T, tg *target, clientID, filter string) {
	t.Helper()
	if tg.proto != 5 {
		c := client(t, tg, tg.url, clientID, false)
		wait(t, c.Subscribe(filter, 1, nil))
		c.Disconnect(100)
		return
	}
	c := client5(t, tg, tg.url, clientID, 24*time.Hour)
	require.Less(t, c.Subscribe(t, filter, 1), byte(0x80), "SUBACK of %s", filter)
	require.NoError(t, c.Disconnect(&paho5.Disconnect{}))
}

// client5 connects an MQTT 5 client (paho.golang) to url as tg's user; with
// expiry 0 it starts clean, else it keeps a session that expiry long.
func client5(t *testing.T, tg *target, url, clientID string, expiry time.Duration) *brokertest.Client5 {
	t.Helper()
	cp := paho5.Connect{ClientID: clientID, CleanStart: expiry == 0,
		Username: tg.user, UsernameFlag: true, Password: []byte(tg.password), PasswordFlag: true}
	if expiry > 0 {
		seconds := uint32(expiry / time.Second)
		cp.Properties = &paho5.ConnectProperties{SessionExpiryInterval: &seconds}
	}
	return brokertest.Connect5With(t, url, brokertest.Options5{Connect: cp})
}

// probe publishes "probe-{i}" to topic at QoS 0 every 100ms until every
// key has received one: then the reads are subscribed.
func probe(t *testing.T, pub paho.Client, topic string, r *running, keys ...string) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		ready := true
		for _, k := range keys {
			ready = ready && len(filter(received.get(k), payloadPrefix("probe-"))) > 0
		}
		if ready {
			return
		}
		pub.Publish(topic, 0, false, fmt.Sprintf("probe-%d", i))
		select {
		case <-tick.C:
		case <-r.done:
			require.FailNowf(t, "pipeline ended", "before its reads subscribed: %v", r.err)
		case <-deadline:
			require.FailNow(t, "the reads did not receive a probe: not subscribed")
		}
	}
}

// filter returns the messages of msgs that match.
func filter(msgs []mqttio.Message, match func(mqttio.Message) bool) []mqttio.Message {
	var out []mqttio.Message
	for _, m := range msgs {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}
