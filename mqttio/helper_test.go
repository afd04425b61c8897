package mqttio

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	ptest.MainWithDefault(m, "prism")
}

// testTimeout bounds every wait in the tests.
const testTimeout = 60 * time.Second

// newClient connects a paho client for test publishing and subscribing.
// pahoOptions configures test clients.
type pahoOptions = mqtt.ClientOptions

func newClient(t testing.TB, url, clientID string, clean bool, configure ...func(*pahoOptions)) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(clean).
		SetAutoReconnect(false).SetProtocolVersion(4)
	for _, c := range configure {
		c(opts)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(testTimeout), "connect timed out")
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// primeSession creates the broker session a reader with clientID will use,
// subscribed to filter, so that messages published before the pipeline
// starts wait for it on the broker.
func primeSession(t testing.TB, url, clientID, filter string, qos byte, configure ...func(*pahoOptions)) {
	t.Helper()
	c := newClient(t, url, clientID, false, configure...)
	tok := c.Subscribe(filter, qos, nil)
	require.True(t, tok.WaitTimeout(testTimeout))
	require.NoError(t, tok.Error())
	c.Disconnect(50)
}

// withBacklog makes n messages "m-{i}" on topic wait on the broker for the
// first reader of clientID (the reader's id is clientID+"-0").
func withBacklog(t testing.TB, url, clientID, filter, topic string, n int) {
	t.Helper()
	primeSession(t, url, clientID+"-0", filter, 1)
	publish(t, newClient(t, url, clientID+"-pub", true), 1, n, fixedTopic(topic), "m")
}

// publish publishes n messages "{prefix}-{i}" to topic(i) and waits for all.
func publish(t testing.TB, c mqtt.Client, qos byte, n int, topic func(int) string, prefix string) {
	t.Helper()
	toks := make([]mqtt.Token, n)
	for i := range n {
		toks[i] = c.Publish(topic(i), qos, false, fmt.Sprintf("%s-%d", prefix, i))
	}
	for _, tok := range toks {
		require.True(t, tok.WaitTimeout(testTimeout), "publish timed out")
		require.NoError(t, tok.Error())
	}
}

func fixedTopic(topic string) func(int) string { return func(int) string { return topic } }

// collector gathers what a pipeline's elements reach, across bundles, for
// assertions after the pipeline ends. Pipelines on prism run in-process.
type collector struct {
	mu   sync.Mutex
	msgs map[string][]Message
}

var collected = collector{msgs: map[string][]Message{}}

func (c *collector) add(key string, m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs[key] = append(c.msgs[key], m)
}

func (c *collector) take(key string) []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs[key]
	delete(c.msgs, key)
	return m
}

// collectFn sends each message to the collector under Key.
type collectFn struct{ Key string }

func (f *collectFn) ProcessElement(m Message) { collected.add(f.Key, m) }

func init() { register.DoFn1x0[Message](&collectFn{}) }

// collect attaches a collector to col and returns its key.
func collect(s beam.Scope, t testing.TB, col beam.PCollection) string {
	key := t.Name()
	beam.ParDo0(s, &collectFn{Key: key}, col)
	return key
}

// payloads returns the messages' payloads, sorted.
func payloads(msgs []Message) []string {
	out := inOrder(msgs)
	sort.Strings(out)
	return out
}

// inOrder returns the messages' payloads in the order of msgs.
func inOrder(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}

func unique(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func expected(prefix string, n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	sort.Strings(out)
	return out
}

func safeID(t testing.TB) string {
	r := strings.NewReplacer("/", "-", " ", "-", "#", "", "+", "")
	return r.Replace(t.Name())
}

// watchedBroker is an embedded broker that reports subscriptions and
// deliveries, so tests publish only once the readers listen.
type watchedBroker struct {
	*embeddedbroker.Broker
	subscribed chan string // client ids, one per accepted SUBSCRIBE
	mu         sync.Mutex
	delivered  map[string]int // PUBLISH packets sent, by client id
}

func startWatched(t testing.TB, opts ...embeddedbroker.Option) *watchedBroker {
	t.Helper()
	w := &watchedBroker{subscribed: make(chan string, 1000), delivered: map[string]int{}}
	opts = append(opts,
		embeddedbroker.OnSubscribe(func(id string, _ []string) {
			select {
			case w.subscribed <- id:
			default:
			}
		}),
		embeddedbroker.OnDeliver(func(id, _ string) {
			w.mu.Lock()
			w.delivered[id]++
			w.mu.Unlock()
		}))
	w.Broker = startEmbedded(t, opts...)
	return w
}

// awaitSubscribed waits until each client id has subscribed.
func (w *watchedBroker) awaitSubscribed(t testing.TB, ids ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	timeout := time.After(testTimeout)
	for len(want) > 0 {
		select {
		case id := <-w.subscribed:
			delete(want, id)
		case <-timeout:
			require.FailNowf(t, "timed out", "waiting for subscriptions of %v", want)
		}
	}
}

func (w *watchedBroker) deliveries(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.delivered[id]
}

// runAsync runs the pipeline on prism in the background, bounded by
// testTimeout. wait waits for it to end and returns its error; stop cancels it
// first. The test's cleanup stops it.
func runAsync(t testing.TB, p *beam.Pipeline) *asyncRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	r := &asyncRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		_, r.err = beam.Run(ctx, "prism", p)
		close(r.done)
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

type asyncRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (r *asyncRun) wait() error {
	<-r.done // bounded: the run's context times out
	return r.err
}

func (r *asyncRun) stop() {
	r.cancel()
	<-r.done
}

// awaitCollected waits until the collector holds n distinct payloads for key.
func awaitCollected(t testing.TB, key string, n int, run *asyncRun) []string {
	t.Helper()
	timeout := time.After(testTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		collected.mu.Lock()
		got := unique(payloads(collected.msgs[key]))
		collected.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-tick.C:
		case <-run.done:
			require.FailNowf(t, "pipeline ended", "with %d of %d messages: %v", len(got), n, run.err)
		case <-timeout:
			require.FailNowf(t, "timed out", "waiting for %d messages, have %d", n, len(got))
		}
	}
}
