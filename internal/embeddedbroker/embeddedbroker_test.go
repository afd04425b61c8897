package embeddedbroker_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// publish publishes payloads to topic at QoS 1 and waits for each PUBACK.
func publish(t *testing.T, c paho.Client, topic string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		brokertest.Await(t, c.Publish(topic, 1, false, p))
	}
}

// settle waits until the broker has routed everything pub has published so
// far: mochi acknowledges a publish before routing it, but routes each
// client's publishes in order, so a later QoS 0 message marks the point.
func settle(t *testing.T, url string, pub paho.Client) {
	t.Helper()
	in := brokertest.NewInbox(1)
	observer := brokertest.Connect(t, brokertest.ClientOptions(url, "settle"))
	brokertest.Await(t, observer.Subscribe("settle", 0, in.Handle))
	brokertest.Await(t, pub.Publish("settle", 0, false, "settled"))
	in.Next(t, 1)
}

// numbered returns the payloads prefix0 ... prefix(n-1).
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func TestPublishSubscribe(t *testing.T) {
	b := brokertest.Embedded(t)
	require.Regexp(t, `^tcp://127\.0\.0\.1:\d+$`, b.URL())
	require.Empty(t, b.TLSURL())
	require.Empty(t, b.WSURL())

	in := brokertest.NewInbox(1024)
	sub := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "sub"))
	brokertest.Await(t, sub.Subscribe("a/+", 1, in.Handle))
	pub := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "pub"))
	publish(t, pub, "a/b", "hello")

	require.Equal(t, []string{"hello"}, brokertest.Payloads(in.Next(t, 1)))
}

func TestPersistentSessionRedelivery(t *testing.T) {
	b := brokertest.Embedded(t)
	pub := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "pub"))

	// First connection: subscribe, receive one message and never ack it.
	in := brokertest.NewInbox(1024)
	first, err := brokertest.TryConnect(brokertest.ClientOptions(b.URL(), "durable").SetCleanSession(false).SetAutoAckDisabled(true))
	require.NoError(t, err)
	brokertest.Await(t, first.Subscribe("jobs/#", 1, in.Handle))
	publish(t, pub, "jobs/1", "unacked")
	require.Equal(t, []string{"unacked"}, brokertest.Payloads(in.Next(t, 1)))
	first.Disconnect(0)

	// While away.
	publish(t, pub, "jobs/2", numbered("away-", 3)...)
	settle(t, b.URL(), pub)

	// Second connection with the same id: no new subscription needed.
	in2 := brokertest.NewInbox(1024)
	second := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "durable").SetCleanSession(false).SetDefaultPublishHandler(in2.Handle))
	redelivered := in2.Next(t, 4)
	require.ElementsMatch(t, []string{"unacked", "away-0", "away-1", "away-2"}, brokertest.Payloads(redelivered))
	for _, m := range redelivered {
		if string(m.Payload()) == "unacked" {
			require.True(t, m.Duplicate(), "an in-flight message is redelivered with DUP set")
		}
	}

	// The session still routes new messages.
	publish(t, pub, "jobs/3", "live")
	require.Equal(t, []string{"live"}, brokertest.Payloads(in2.Next(t, 1)))
	require.True(t, second.IsConnectionOpen())
}

func TestSharedSubscription(t *testing.T) {
	b := brokertest.Embedded(t)
	const total = 200
	type delivery struct {
		client  int
		payload string
	}
	all := make(chan delivery, total*2)
	for i := range 2 {
		c := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "worker-"+strconv.Itoa(i)))
		brokertest.Await(t, c.Subscribe("$share/g/devices/+/t", 1, func(_ paho.Client, m paho.Message) {
			all <- delivery{client: i, payload: string(m.Payload())}
		}))
	}
	pub := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "pub"))
	for i := range total {
		publish(t, pub, fmt.Sprintf("devices/%d/t", i%7), "m"+strconv.Itoa(i))
	}

	perClient := map[int]int{}
	var payloads []string
	timeout := time.After(brokertest.Timeout)
	for len(payloads) < total {
		select {
		case d := <-all:
			perClient[d.client]++
			payloads = append(payloads, d.payload)
		case <-timeout:
			t.Fatalf("received %d of %d messages", len(payloads), total)
		}
	}
	require.ElementsMatch(t, numbered("m", total), payloads, "every message exactly once")
	require.Positive(t, perClient[0], "worker-0 got nothing: %v", perClient)
	require.Positive(t, perClient[1], "worker-1 got nothing: %v", perClient)
}

func TestAuth(t *testing.T) {
	b := brokertest.Embedded(t, embeddedbroker.Auth("alice", "s3cret"))

	for name, opts := range map[string]*paho.ClientOptions{
		"wrong password": brokertest.ClientOptions(b.URL(), "c").SetUsername("alice").SetPassword("nope"),
		"wrong user":     brokertest.ClientOptions(b.URL(), "c").SetUsername("bob").SetPassword("s3cret"),
		"anonymous":      brokertest.ClientOptions(b.URL(), "c"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := brokertest.TryConnect(opts)
			require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)
		})
	}
	brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "c").SetUsername("alice").SetPassword("s3cret"))
}

// tlsConfig loads a client TLS configuration or fails the test.
func tlsConfig(t *testing.T, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg, err := certs.ClientTLSConfig(caFile, certFile, keyFile)
	require.NoError(t, err)
	return cfg
}

func TestTLS(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	b := brokertest.Embedded(t, embeddedbroker.TLS(c.ServerCert, c.ServerKey))
	require.Regexp(t, `^ssl://127\.0\.0\.1:\d+$`, b.TLSURL())

	in := brokertest.NewInbox(1024)
	sub := brokertest.Connect(t, brokertest.ClientOptions(b.TLSURL(), "sub").SetTLSConfig(tlsConfig(t, c.CAFile, "", "")))
	brokertest.Await(t, sub.Subscribe("secure", 1, in.Handle))
	pub := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "pub")) // plain listener stays available
	publish(t, pub, "secure", "over tls")
	require.Equal(t, []string{"over tls"}, brokertest.Payloads(in.Next(t, 1)))

	_, err = brokertest.TryConnect(brokertest.ClientOptions(b.TLSURL(), "untrusting").SetTLSConfig(tlsConfig(t, c.OtherCAFile, "", "")))
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)
}

func TestMutualTLS(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	b := brokertest.Embedded(t, embeddedbroker.TLS(c.ServerCert, c.ServerKey), embeddedbroker.ClientCA(c.CAFile))

	_, err = brokertest.TryConnect(brokertest.ClientOptions(b.TLSURL(), "anonymous").SetTLSConfig(tlsConfig(t, c.CAFile, "", "")))
	require.Error(t, err, "a client without a certificate must be rejected")

	brokertest.Connect(t, brokertest.ClientOptions(b.TLSURL(), "holder").SetTLSConfig(tlsConfig(t, c.CAFile, c.ClientCert, c.ClientKey)))
}

func TestWebsocket(t *testing.T) {
	b := brokertest.Embedded(t, embeddedbroker.Websocket())
	require.Regexp(t, `^ws://127\.0\.0\.1:\d+$`, b.WSURL())

	in := brokertest.NewInbox(1024)
	sub := brokertest.Connect(t, brokertest.ClientOptions(b.WSURL(), "ws-sub"))
	brokertest.Await(t, sub.Subscribe("ws/t", 1, in.Handle))
	publish(t, brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "pub")), "ws/t", "via websocket")
	require.Equal(t, []string{"via websocket"}, brokertest.Payloads(in.Next(t, 1)))
}

// TestMaxInflightCapsUnackedAndDrops records what mochi does with an
// MQTT 3.1.1 subscriber that never acknowledges: it is sent exactly n
// messages and the rest are dropped, not queued.
func TestMaxInflightCapsUnackedAndDrops(t *testing.T) {
	const n = 5
	b := brokertest.Embedded(t, embeddedbroker.MaxInflight(n))

	in := brokertest.NewInbox(1024)
	sub := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "slow").SetAutoAckDisabled(true))
	brokertest.Await(t, sub.Subscribe("flood", 1, in.Handle))
	brokertest.Await(t, sub.Subscribe("sentinel", 0, in.Handle))
	pub := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "pub"))
	publish(t, pub, "flood", numbered("m", 4*n)...)
	// The broker routes one publisher's messages in order and writes them to
	// a subscriber in order, and QoS 0 is not subject to the cap, so the
	// sentinel arrives after every flood message that was sent at all.
	brokertest.Await(t, pub.Publish("sentinel", 0, false, "sentinel"))

	got := brokertest.Payloads(in.Next(t, n+1))
	require.Equal(t, append(numbered("m", n), "sentinel"), got)
}

// TestMaxInflightBoundsOfflineQueue records that the same cap bounds what a
// disconnected persistent session keeps.
func TestMaxInflightBoundsOfflineQueue(t *testing.T) {
	const n = 5
	b := brokertest.Embedded(t, embeddedbroker.MaxInflight(n))
	pub := brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "pub"))
	// The first connection never acknowledges: whatever reaches it before
	// mochi has processed its DISCONNECT stays pending in the session too.
	away, err := brokertest.TryConnect(brokertest.ClientOptions(b.URL(), "durable").
		SetCleanSession(false).SetAutoAckDisabled(true))
	require.NoError(t, err)
	brokertest.Await(t, away.Subscribe("jobs", 1, func(paho.Client, paho.Message) {}))
	away.Disconnect(0)
	publish(t, pub, "jobs", numbered("away-", 4*n)...)
	settle(t, b.URL(), pub)

	in := brokertest.NewInbox(1024)
	brokertest.Connect(t, brokertest.ClientOptions(b.URL(), "durable").SetCleanSession(false).SetDefaultPublishHandler(in.Handle))
	brokertest.Await(t, pub.Publish("jobs", 0, false, "sentinel"))
	// The kept messages are redelivered in no particular order, and the
	// sentinel may overtake them; had more than n been kept, n+1 of them
	// would arrive before the sentinel is seen.
	got := brokertest.Payloads(in.Next(t, n+1))
	require.Contains(t, got, "sentinel", "more than %d messages were kept: %q", n, got)
}

func TestOptionErrors(t *testing.T) {
	missing := t.TempDir() + "/missing.pem"
	for _, tc := range []struct {
		opt  embeddedbroker.Option
		want string
	}{
		{embeddedbroker.Addr("no-port"), "Addr(\"no-port\")"},
		{embeddedbroker.Addr("127.0.0.1:http"), "Addr(\"127.0.0.1:http\")"},
		{embeddedbroker.TLS(missing, missing), "TLS("},
		{embeddedbroker.ClientCA(missing), "ClientCA("},
		{embeddedbroker.Auth("", "x"), "Auth"},
		{embeddedbroker.MaxInflight(0), "MaxInflight(0)"},
		{embeddedbroker.MaxInflight(70000), "MaxInflight(70000)"},
		{embeddedbroker.Logger(nil), "Logger"},
		{nil, "option 0 is nil"},
	} {
		_, err := embeddedbroker.Start(tc.opt)
		require.ErrorContains(t, err, tc.want)
	}

	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	_, err = embeddedbroker.Start(embeddedbroker.ClientCA(c.CAFile))
	require.ErrorContains(t, err, "ClientCA needs TLS")
}

func TestAddrInUse(t *testing.T) {
	b := brokertest.Embedded(t)
	addr := b.URL()[len("tcp://"):]
	_, err := embeddedbroker.Start(embeddedbroker.Addr(addr))
	require.ErrorContains(t, err, "address already in use")
}

func TestCloseFreesPort(t *testing.T) {
	b, err := embeddedbroker.Start(embeddedbroker.Websocket())
	require.NoError(t, err)
	addr := b.URL()[len("tcp://"):]
	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "Close is idempotent")

	again, err := embeddedbroker.Start(embeddedbroker.Addr(addr))
	require.NoError(t, err, "port of a closed broker can be bound again")
	require.NoError(t, again.Close())
}
