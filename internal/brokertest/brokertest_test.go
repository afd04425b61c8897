package brokertest_test

import (
	"crypto/x509"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
)

// pubSub checks that a message published by a client connected with pub
// reaches a subscriber connected with sub.
func pubSub(t *testing.T, sub, pub *paho.ClientOptions) {
	t.Helper()
	in := brokertest.NewInbox(1)
	brokertest.Await(t, brokertest.Connect(t, sub).Subscribe("brokertest/+", 1, in.Handle))
	pubClient := brokertest.Connect(t, pub)
	brokertest.Await(t, pubClient.Publish("brokertest/x", 1, false, "ping"))
	require.Equal(t, []string{"ping"}, brokertest.Payloads(in.Next(t, 1)))
}

// publisher returns the options of a publishing client of url.
func publisher(url string) *paho.ClientOptions { return brokertest.ClientOptions(url, "pub") }

func TestEmbedded(t *testing.T) {
	b := brokertest.Embedded(t)
	pubSub(t, brokertest.ClientOptions(b.URL(), "sub"), publisher(b.URL()))
}

func TestMosquitto(t *testing.T) {
	m := brokertest.Mosquitto(t)
	require.Regexp(t, `^tcp://127\.0\.0\.1:\d+$`, m.URL())
	require.Empty(t, m.TLSURL())
	require.Empty(t, m.WSURL())
	pubSub(t, brokertest.ClientOptions(m.URL(), "sub"), publisher(m.URL()))
}

func TestMosquittoTLS(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	m := brokertest.Mosquitto(t, brokertest.MosquittoTLS(c))
	require.Regexp(t, `^ssl://127\.0\.0\.1:\d+$`, m.TLSURL())

	trusting, err := certs.ClientTLSConfig(c.CAFile, "", "")
	require.NoError(t, err)
	pubSub(t, brokertest.ClientOptions(m.TLSURL(), "sub").SetTLSConfig(trusting), publisher(m.URL()))

	untrusting, err := certs.ClientTLSConfig(c.OtherCAFile, "", "")
	require.NoError(t, err)
	_, err = brokertest.TryConnect(brokertest.ClientOptions(m.TLSURL(), "untrusting").SetTLSConfig(untrusting))
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)
}

func TestMosquittoRequireClientCert(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	m := brokertest.Mosquitto(t, brokertest.MosquittoTLS(c), brokertest.MosquittoRequireClientCert())

	without, err := certs.ClientTLSConfig(c.CAFile, "", "")
	require.NoError(t, err)
	_, err = brokertest.TryConnect(brokertest.ClientOptions(m.TLSURL(), "anonymous").SetTLSConfig(without))
	require.Error(t, err, "a client without a certificate must be rejected")

	with, err := certs.ClientTLSConfig(c.CAFile, c.ClientCert, c.ClientKey)
	require.NoError(t, err)
	pubSub(t, brokertest.ClientOptions(m.TLSURL(), "holder").SetTLSConfig(with), publisher(m.URL()))
}

func TestMosquittoAuth(t *testing.T) {
	m := brokertest.Mosquitto(t, brokertest.MosquittoAuth("alice", "s3cret"))

	_, err := brokertest.TryConnect(brokertest.ClientOptions(m.URL(), "c").SetUsername("alice").SetPassword("wrong"))
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)
	_, err = brokertest.TryConnect(brokertest.ClientOptions(m.URL(), "c"))
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)

	brokertest.Connect(t, brokertest.ClientOptions(m.URL(), "c").SetUsername("alice").SetPassword("s3cret"))
}

func TestMosquittoWebsocket(t *testing.T) {
	m := brokertest.Mosquitto(t, brokertest.MosquittoWebsocket())
	require.Regexp(t, `^ws://127\.0\.0\.1:\d+$`, m.WSURL())
	pubSub(t, brokertest.ClientOptions(m.WSURL(), "ws-sub"), publisher(m.URL()))
}

func TestMosquittoRestart(t *testing.T) {
	m := brokertest.Mosquitto(t)

	connected := make(chan struct{}, 4)
	lost := make(chan error, 4)
	resilient := brokertest.ClientOptions(m.URL(), "resilient").
		SetAutoReconnect(true).
		SetMaxReconnectInterval(100 * time.Millisecond).
		SetOnConnectHandler(func(paho.Client) { connected <- struct{}{} }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	brokertest.Connect(t, resilient)
	<-connected

	m.Restart(t)
	select {
	case <-lost:
	case <-time.After(brokertest.Timeout):
		t.Fatal("client did not notice the restart")
	}
	select {
	case <-connected:
	case <-time.After(brokertest.Timeout):
		t.Fatal("client did not reconnect after the restart")
	}
	pubSub(t, brokertest.ClientOptions(m.URL(), "sub"), publisher(m.URL()))

	m.Stop()
	_, err := brokertest.TryConnect(brokertest.ClientOptions(m.URL(), "after-stop"))
	require.Error(t, err, "a stopped broker must refuse connections")
	m.Stop() // idempotent
}

// TestMosquittoMaxInflight records how mosquitto 2.0.11 applies
// max_inflight_messages to an MQTT 3.1.1 subscriber: the first burst is
// exactly n messages, but one PUBACK can release more than one queued
// message, so more than n go unacknowledged. Nothing is lost or reordered.
func TestMosquittoMaxInflight(t *testing.T) {
	const n = 5
	m := brokertest.Mosquitto(t, brokertest.MosquittoMaxInflight(n))

	in := brokertest.NewInbox(8 * n)
	sub := brokertest.Connect(t, brokertest.ClientOptions(m.URL(), "slow").SetAutoAckDisabled(true))
	brokertest.Await(t, sub.Subscribe("flood", 1, in.Handle))
	brokertest.Await(t, sub.Subscribe("sentinel", 0, in.Handle))
	pub := brokertest.Connect(t, brokertest.ClientOptions(m.URL(), "pub"))
	var want []string
	for i := range 4 * n {
		want = append(want, "m"+strconv.Itoa(i))
		brokertest.Await(t, pub.Publish("flood", 1, false, want[i]))
	}

	// QoS 0 is not held back by the window, so the sentinel arrives after
	// everything mosquitto was willing to send.
	brokertest.Await(t, pub.Publish("sentinel", 0, false, "sentinel"))
	first := in.Next(t, n+1)
	require.Equal(t, append(want[:n:n], "sentinel"), brokertest.Payloads(first), "initial window")

	// Acknowledging one message releases several: n+1 are now unacknowledged.
	first[0].Ack()
	more := in.Next(t, 2)
	require.Equal(t, want[n:n+2], brokertest.Payloads(more))

	// Acknowledge everything; the rest follows in order.
	got := brokertest.Payloads(first[:n])
	got = append(got, brokertest.Payloads(more)...)
	for _, msg := range append(first[1:n], more...) {
		msg.Ack()
	}
	for len(got) < len(want) {
		msg := in.Next(t, 1)[0]
		got = append(got, string(msg.Payload()))
		msg.Ack()
	}
	require.Equal(t, want, got, "every message once, in order")
}

// vanish leaves a persistent session for client id subscribed to topic at
// QoS 1 and returns once mosquitto has taken it offline. The connection is
// dropped without DISCONNECT, so mosquitto publishes the client's will, which
// an observer waits for; mosquitto does so in the same step in which it takes
// the session offline. (After a DISCONNECT there is nothing to wait for, and
// messages published right after it could still reach the old connection.)
func vanish(t *testing.T, brokerURL, id, topic string) {
	t.Helper()
	willTopic := "gone/" + id
	gone := brokertest.NewInbox(1)
	observer := brokertest.Connect(t, brokertest.ClientOptions(brokerURL, id+"-observer"))
	brokertest.Await(t, observer.Subscribe(willTopic, 0, gone.Handle))

	conns := make(chan net.Conn, 1)
	o := brokertest.ClientOptions(brokerURL, id).
		SetCleanSession(false).
		SetWill(willTopic, "gone", 0, false).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			conn, err := net.Dial("tcp", u.Host)
			if err == nil {
				conns <- conn
			}
			return conn, err
		})
	c, err := brokertest.TryConnect(o)
	require.NoError(t, err)
	brokertest.Await(t, c.Subscribe(topic, 1, func(paho.Client, paho.Message) {}))
	require.NoError(t, (<-conns).Close())
	gone.Next(t, 1)
}

// TestMosquittoKeepsThousandsForAbsentClient checks the default unlimited
// queue: nothing published while a persistent client is away is lost.
func TestMosquittoKeepsThousandsForAbsentClient(t *testing.T) {
	const total = 5000
	m := brokertest.Mosquitto(t)
	vanish(t, m.URL(), "durable", "bulk")

	pub := brokertest.Connect(t, brokertest.ClientOptions(m.URL(), "pub"))
	toks := make([]paho.Token, total)
	for i := range toks {
		toks[i] = pub.Publish("bulk", 1, false, strconv.Itoa(i))
	}
	for _, tok := range toks {
		brokertest.Await(t, tok)
	}

	in := brokertest.NewInbox(total)
	brokertest.Connect(t, brokertest.ClientOptions(m.URL(), "durable").SetCleanSession(false).SetDefaultPublishHandler(in.Handle))
	require.Equal(t, numbered(total), brokertest.Payloads(in.Next(t, total)), "every message once, in order")
}

// TestMosquittoMaxQueued records that max_queued_messages bounds what an
// absent persistent client gets on its return: the oldest n messages.
func TestMosquittoMaxQueued(t *testing.T) {
	const n = 10
	m := brokertest.Mosquitto(t, brokertest.MosquittoMaxQueued(n))
	vanish(t, m.URL(), "durable", "bulk")

	pub := brokertest.Connect(t, brokertest.ClientOptions(m.URL(), "pub"))
	for _, p := range numbered(5 * n) {
		brokertest.Await(t, pub.Publish("bulk", 1, false, p))
	}
	in := brokertest.NewInbox(5 * n)
	c := brokertest.Connect(t, brokertest.ClientOptions(m.URL(), "durable").SetCleanSession(false).SetDefaultPublishHandler(in.Handle))
	brokertest.Await(t, c.Subscribe("sentinel", 0, in.Handle))
	brokertest.Await(t, pub.Publish("sentinel", 0, false, "sentinel"))
	// The kept messages were sent on reconnect, before the sentinel was
	// subscribed; the oldest n are kept and the newer ones dropped.
	want := append(numbered(n), "sentinel")
	require.Equal(t, want, brokertest.Payloads(in.Next(t, n+1)))
}

// numbered returns "0" ... strconv.Itoa(n-1).
func numbered(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}

// TestMosquittoV5 records what mosquitto 2.0.11 tells MQTT 5 clients: the
// limits of its configuration in CONNACK, an ACL refusal in the PUBACK, and
// the expiry of a session in its log.
func TestMosquittoV5(t *testing.T) {
	m := brokertest.Mosquitto(t, brokertest.MosquittoMaxInflight(5),
		brokertest.MosquittoSettings("max_keepalive 10", "max_packet_size 2000"),
		brokertest.MosquittoMaxQueued(100000), brokertest.MosquittoACL("pattern readwrite open/#", "topic read readonly"))
	c := brokertest.Connect5(t, m.URL(), "v5")
	p := c.Connack.Properties
	require.Equal(t, uint16(5), *p.ReceiveMaximum, "max_inflight_messages")
	require.Equal(t, uint16(10), *p.ServerKeepAlive, "max_keepalive")
	require.Equal(t, uint32(2000), *p.MaximumPacketSize, "max_packet_size")
	require.Equal(t, byte(0x87), c.Publish(t, &paho5.Publish{Topic: "readonly", QoS: 1, Payload: []byte("x")}))
	require.Equal(t, byte(0x10), c.Publish(t, &paho5.Publish{Topic: "open/x", QoS: 1, Payload: []byte("x")}), "no matching subscribers")
	require.Equal(t, byte(1), c.Subscribe(t, "secret/#", 1), "mosquitto grants subscriptions its ACL does not allow")

	one := uint32(1)
	short, err := brokertest.TryConnect5(m.URL(), brokertest.Options5{Connect: paho5.Connect{
		ClientID: "short", Properties: &paho5.ConnectProperties{SessionExpiryInterval: &one}}})
	require.NoError(t, err)
	require.NoError(t, short.Disconnect(&paho5.Disconnect{}))
	m.AwaitLog(t, "Expiring client short due to timeout")
}
