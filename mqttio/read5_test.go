package mqttio

import (
	"net"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// v5 is the option of the MQTT 5 tests.
var v5 = ProtocolVersion(5)

// eachProtocol runs test as a subtest per MQTT version, with its option.
func eachProtocol(t *testing.T, test func(t *testing.T, version Option)) {
	for _, p := range []struct {
		name string
		opt  Option
	}{{"v3", ProtocolVersion(3)}, {"v5", v5}} {
		t.Run(p.name, func(t *testing.T) { test(t, p.opt) })
	}
}

// brokers start the test brokers by name, for tests that run on both.
var brokers = map[string]func(t *testing.T) string{
	"embedded":  func(t *testing.T) string { return startEmbedded(t).URL() },
	"mosquitto": func(t *testing.T) string { return brokertest.Mosquitto(t).URL() },
}

// primeSession5 creates the MQTT 5 session a reader with clientID will use,
// subscribed to filter at QoS 1 and kept for an hour.
func primeSession5(t *testing.T, url, clientID, filter string) {
	t.Helper()
	hour := uint32(3600)
	c := brokertest.Connect5With(t, url, brokertest.Options5{Connect: paho.Connect{
		ClientID: clientID, Properties: &paho.ConnectProperties{SessionExpiryInterval: &hour}}})
	require.Less(t, c.Subscribe(t, filter, 1), byte(0x80))
	require.NoError(t, c.Disconnect(&paho.Disconnect{}))
}

// The properties a publisher sets reach Message, on both brokers.
func TestReadV5Properties(t *testing.T) {
	for name, start := range brokers {
		t.Run(name, func(t *testing.T) {
			url := start(t)
			id := safeID(t)
			primeSession5(t, url, id+"-0", "props/#")
			pub := brokertest.Connect5(t, url, id+"-pub")
			format, expiry := byte(1), uint32(3600)
			require.Less(t, pub.Publish(t, &paho.Publish{Topic: "props/x", QoS: 1, Payload: []byte(`{"t":1}`), Properties: &paho.PublishProperties{
				User:        paho.UserProperties{{Key: "site", Value: "north"}, {Key: "fw", Value: "1.2"}, {Key: "site", Value: "again"}},
				ContentType: "application/json", ResponseTopic: "replies/x", CorrelationData: []byte{1, 2, 3},
				MessageExpiry: &expiry, PayloadFormat: &format,
			}}), byte(0x80))
			require.Less(t, pub.Publish(t, &paho.Publish{Topic: "props/y", QoS: 1, Payload: []byte("plain")}), byte(0x80))

			p, s := beam.NewPipelineWithRoot()
			key := collect(s, t, Read(s, []string{url}, []string{"props/#"}, v5, ClientID(id), MaxRecords(2)))
			ptest.RunAndValidate(t, p)
			got := map[string]Message{}
			for _, m := range collected.take(key) {
				got[m.Topic] = m
			}
			x := got["props/x"]
			require.Equal(t, UserProperties{{"site", "north"}, {"fw", "1.2"}, {"site", "again"}}, x.UserProperties)
			require.Equal(t, "application/json", x.ContentType)
			require.Equal(t, "replies/x", x.ResponseTopic)
			require.Equal(t, []byte{1, 2, 3}, x.CorrelationData)
			require.True(t, x.PayloadUTF8)
			require.Greater(t, x.MessageExpiry, 3590*time.Second)
			require.LessOrEqual(t, x.MessageExpiry, time.Hour)
			y := got["props/y"]
			require.Empty(t, y.UserProperties)
			require.Empty(t, y.ContentType)
			require.Nil(t, y.CorrelationData)
			// (mochi gives every message an expiry of a day.)
		})
	}
}

// Without InflightWindow an MQTT 5 reader checkpoints on the broker's window
// from its CONNACK (Mosquitto announces max_inflight_messages there), and
// reads everything; with InflightWindow the reader announces its window and
// the broker holds it to that.
func TestReadV5InflightWindow(t *testing.T) {
	m := brokertest.Mosquitto(t, brokertest.MosquittoMaxInflight(5))
	id := safeID(t)
	withBacklog(t, m.URL(), id, "win/#", "win/x", 30)
	fn, r := newTestReadFn(t, m.URL(), []string{"win/#"}, v5, ClientID(id), MaxBundle(100, time.Minute))
	res := runBundle(t, fn, r)
	s, _ := sessions.Get(r.ClientID)
	require.Equal(t, 5, s.window, "the broker's Receive Maximum")
	got := payloads(res.msgs)
	for i := 0; i < 100 && len(unique(got)) < 30; i++ {
		res = runBundle(t, fn, res.residual)
		got = append(got, payloads(res.msgs)...)
	}
	require.ElementsMatch(t, expected("m", 30), unique(got))
	closeSession(r.ClientID)

	// A reader that announces 3 gets 3 from a broker that would send 1000.
	// A QoS 0 message published after the QoS 1 ones is not held back by
	// the window: it arrives after all the broker was willing to send.
	raised := brokertest.Mosquitto(t, brokertest.MosquittoMaxInflight(1000))
	fn, r = newTestReadFn(t, raised.URL(), []string{"win/#"}, v5, ClientID(id), InflightWindow(3), MaxBundle(100, time.Minute), IdleWatermark(10*time.Millisecond))
	idle := runBundle(t, fn, r)
	require.Empty(t, idle.msgs)
	pub := newClient(t, raised.URL(), id+"-pub", true)
	publish(t, pub, 1, 30, fixedTopic("win/x"), "m")
	publish(t, pub, 0, 1, fixedTopic("win/x"), "sentinel")
	s, _ = sessions.Get(r.ClientID)
	deadline := time.After(testTimeout)
	for len(s.queue) < 4 {
		select {
		case <-deadline:
			t.Fatalf("the reader received %d messages, want 3 and the sentinel", len(s.queue))
		case <-time.After(5 * time.Millisecond):
		}
	}
	require.Equal(t, []string{"m-0", "m-1", "m-2", "sentinel-0"}, payloads(runBundle(t, fn, idle.residual).msgs))
	s, _ = sessions.Get(r.ClientID)
	require.Equal(t, 3, s.window)
}

// A session with a short expiry interval is gone once the reader has been
// away longer: the broker keeps nothing for it.
func TestSessionExpires(t *testing.T) {
	expired := make(chan string, 10)
	run := func(t *testing.T, url string, awaitExpiry func(id string)) {
		id := safeID(t)
		primeSession5(t, url, id+"-0", "exp/#")
		pub := brokertest.Connect5(t, url, id+"-pub")
		pub.Publish(t, &paho.Publish{Topic: "exp/x", QoS: 1, Payload: []byte("m-0")})
		got, err := readN(t, url, "exp/#", 1, v5, ClientID(id), SessionExpiry(time.Second))
		require.NoError(t, err)
		require.Equal(t, []string{"m-0"}, got)

		awaitExpiry(id + "-0")
		pub.Publish(t, &paho.Publish{Topic: "exp/x", QoS: 1, Payload: []byte("m-1")})
		got, err = readN(t, url, "exp/#", 1, v5, ClientID(id), MaxReadTime(500*time.Millisecond))
		require.NoError(t, err)
		require.Empty(t, got, "the expired session's subscription must be gone with it")
	}
	t.Run("embedded", func(t *testing.T) {
		b := startEmbedded(t, embeddedbroker.OnSessionExpired(func(id string) { expired <- id }))
		run(t, b.URL(), func(id string) {
			for {
				select {
				case got := <-expired:
					if got == id {
						return
					}
				case <-time.After(testTimeout):
					t.Fatalf("session %s did not expire", id)
				}
			}
		})
	})
	t.Run("mosquitto", func(t *testing.T) {
		m := brokertest.Mosquitto(t)
		run(t, m.URL(), func(id string) { m.AwaitLog(t, "Expiring client "+id+" due to timeout") })
	})
}

// An MQTT 5 reader pointed at an MQTT 3.1.1 broker fails at once, naming
// ProtocolVersion: such a broker answers an MQTT 5 CONNECT with the 3.1.1
// return code 1 (unacceptable protocol version).
func TestReadV5AtAnMQTT3Broker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = conn.Read(make([]byte, 1024))              // the CONNECT
				_, _ = conn.Write([]byte{0x20, 0x02, 0x00, 0x01}) // CONNACK, 3.1.1
			}()
		}
	}()
	_, err = readN(t, "tcp://"+l.Addr().String(), "a/#", 1, v5, ClientID(safeID(t)))
	require.ErrorContains(t, err, "use ProtocolVersion(3)")
}
