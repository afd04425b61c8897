package mqttio

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// subscribe5 subscribes an MQTT 5 client to filter and returns its inbox.
func subscribe5(t *testing.T, url, id, filter string) brokertest.Inbox5 {
	t.Helper()
	c := brokertest.Connect5(t, url, id)
	require.Less(t, c.Subscribe(t, filter, 2), byte(0x80))
	return c.Messages
}

// The MQTT 5 properties of a Publication reach the subscribers.
func TestWriteV5Properties(t *testing.T) {
	for name, start := range brokers {
		t.Run(name, func(t *testing.T) {
			url := start(t)
			id := safeID(t)
			in := subscribe5(t, url, id+"-sub", "cmd/#")
			pubs := []Publication{{
				Topic: "cmd/d1", Payload: []byte(`{"a":1}`), Properties: Properties{
					UserProperties: UserProperties{{"k", "v"}, {"k", "w"}}, ContentType: "application/json",
					ResponseTopic: "replies/d1", CorrelationData: []byte("req-1"), MessageExpiry: 90 * time.Second, PayloadUTF8: true,
				},
			}, {Topic: "cmd/d2", Payload: []byte("plain")}}
			p, s := beam.NewPipelineWithRoot()
			passert.Empty(s, Write(s, []string{url}, beam.CreateList(s, pubs), v5, ClientID(id)))
			ptest.RunAndValidate(t, p)

			got := map[string]*paho.Publish{}
			for _, m := range in.Next(t, 2) {
				got[m.Topic] = m
			}
			d1 := got["cmd/d1"].Properties
			require.Equal(t, paho.UserProperties{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}}, d1.User)
			require.Equal(t, "application/json", d1.ContentType)
			require.Equal(t, "replies/d1", d1.ResponseTopic)
			require.Equal(t, []byte("req-1"), d1.CorrelationData)
			require.NotNil(t, d1.MessageExpiry)
			require.InDelta(t, 90, *d1.MessageExpiry, 1)
			require.Equal(t, byte(1), *d1.PayloadFormat)
			require.Empty(t, got["cmd/d2"].Properties.User)
		})
	}
}

// checkRefusedFn checks that every element Write did not publish is one the
// broker refused with the wanted reason code, and emits its topic.
type checkRefusedFn struct {
	Code byte
	Want string
}

func (f *checkRefusedFn) ProcessElement(e PublishError) (string, error) {
	if e.ReasonCode != f.Code || !strings.Contains(e.Reason, f.Want) {
		return "", fmt.Errorf("%s refused with code 0x%02x: %q; want 0x%02x and %q", e.Publication.Topic, e.ReasonCode, e.Reason, f.Code, f.Want)
	}
	return e.Publication.Topic, nil
}

func init() { register.DoFn1x2[PublishError, string, error](&checkRefusedFn{}) }

// A publish the broker refuses goes to Write's error output with the reason;
// the others are published.
func TestWriteV5RefusedGoesToErrorOutput(t *testing.T) {
	denyWrites := func(_, topic string, write bool) bool { return !write || !strings.HasPrefix(topic, "ro/") }
	for name, url := range map[string]func(t *testing.T) string{
		"embedded": func(t *testing.T) string { return startEmbedded(t, embeddedbroker.ACL(denyWrites)).URL() },
		"mosquitto": func(t *testing.T) string {
			return brokertest.Mosquitto(t, brokertest.MosquittoMaxQueued(100000),
				brokertest.MosquittoACL("topic readwrite ok/#", "topic read ro/#")).URL()
		},
	} {
		t.Run(name, func(t *testing.T) {
			u := url(t)
			id := safeID(t)
			in := subscribe5(t, u, id+"-sub", "ok/#")
			pubs := []Publication{{Topic: "ok/1", Payload: []byte("a")}, {Topic: "ro/1", Payload: []byte("b")}, {Topic: "ok/2", Payload: []byte("c")}}
			p, s := beam.NewPipelineWithRoot()
			refused := Write(s, []string{u}, beam.CreateList(s, pubs), v5, ClientID(id), QoS(1))
			passert.Equals(s, beam.ParDo(s, &checkRefusedFn{Code: 0x87, Want: "not authorized (0x87"}, refused), "ro/1")
			res := ptest.RunAndValidate(t, p)
			require.ElementsMatch(t, []string{"a", "c"}, payloads5(in.Next(t, 2)))
			require.Equal(t, int64(2), counter(t, res, "messages_published"))
			require.Equal(t, int64(1), counter(t, res, "publish_rejected"))
		})
	}
}

func payloads5(msgs []*paho.Publish) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}

// A publication larger than the broker's maximum packet size is not sent
// (the broker would drop the connection): it goes to the error output.
func TestWriteV5MaximumPacketSize(t *testing.T) {
	for name, url := range map[string]func(t *testing.T) string{
		"embedded": func(t *testing.T) string { return startEmbedded(t, embeddedbroker.MaximumPacketSize(300)).URL() },
		"mosquitto": func(t *testing.T) string {
			return brokertest.Mosquitto(t, brokertest.MosquittoSettings("max_packet_size 300")).URL()
		},
	} {
		t.Run(name, func(t *testing.T) {
			u := url(t)
			id := safeID(t)
			in := subscribe5(t, u, id+"-sub", "big/#")
			pubs := []Publication{{Topic: "big/small", Payload: make([]byte, 200)}, {Topic: "big/large", Payload: make([]byte, 400)}}
			p, s := beam.NewPipelineWithRoot()
			refused := Write(s, []string{u}, beam.CreateList(s, pubs), v5, ClientID(id))
			passert.Equals(s, beam.ParDo(s, &checkRefusedFn{Code: 0x95, Want: "maximum packet size is 300"}, refused), "big/large")
			ptest.RunAndValidate(t, p)
			require.Equal(t, "big/small", in.Next(t, 1)[0].Topic)
		})
	}
}

// The writer keeps no more QoS 2 publishes unacknowledged than the broker's
// Receive Maximum: mochi disconnects a client that exceeds it (0x93), which
// would make the writer retry.
func TestWriteV5ObeysReceiveMaximum(t *testing.T) {
	b := startEmbedded(t, embeddedbroker.ReceiveMaximum(5))
	id := safeID(t)
	in := subscribe5(t, b.URL(), id+"-sub", "rm/#")
	p, s := beam.NewPipelineWithRoot()
	passert.Empty(s, Write(s, []string{b.URL()}, beam.CreateList(s, numberedPublications(300, fixedTopic("rm/x"))), v5, ClientID(id), QoS(2), MaxPending(1000)))
	res := ptest.RunAndValidate(t, p)
	require.ElementsMatch(t, expected("m", 300), payloads5(in.Next(t, 300)))
	require.Zero(t, counter(t, res, "publish_retries"), "no publish was lost to a disconnect")
}

// A writer whose connection the broker dropped reconnects when it publishes
// next: a restarted broker gets the later bundles' publishes.
func TestWriteReconnectsAfterBrokerRestart(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		m := brokertest.Mosquitto(t)
		id := safeID(t)
		ctx := context.Background()
		fn, err := newWriteFn([]string{m.URL()}, []WriteOption{v, ClientID(id), PublishRetry(10, 5*time.Second)})
		require.NoError(t, err)
		require.NoError(t, fn.Setup())
		t.Cleanup(fn.Teardown)
		bundle := func(topic string) {
			fn.StartBundle(ctx, noReject(t))
			require.NoError(t, fn.ProcessElement(ctx, 0, Publication{Topic: topic, Payload: []byte(topic)}, noReject(t)))
			require.NoError(t, fn.FinishBundle(ctx, noReject(t)))
		}
		in := subscribe(t, m.URL(), id+"-sub", "rc/#")
		bundle("rc/1")
		require.Equal(t, "rc/1", string(in.Next(t, 1)[0].Payload()))

		writers.mu.Lock()
		w := writers.m[fn.key]
		writers.mu.Unlock()
		m.Restart(t)
		for w.lostErr() == nil { // the writer notices the restart (its connection ends)
			select {
			case <-time.After(testTimeout):
				t.Fatal("the writer did not notice the broker restart")
			case <-time.After(5 * time.Millisecond):
			}
		}
		in = subscribe(t, m.URL(), id+"-sub2", "rc/#")
		bundle("rc/2")
		require.Equal(t, "rc/2", string(in.Next(t, 1)[0].Payload()))
	})
}
