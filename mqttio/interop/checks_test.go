package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/mqttio"
)

// root returns the topic level under which t publishes, so that the checks
// sharing a broker do not see each other's messages.
func root(t *testing.T) string { return id(t, "") }

// read adds a Read of filters on url as tg's user to p, with client id
// clientID, and returns the key its messages are kept under.
func (p *pipeline) read(tg *target, name, url, clientID string, filters []string, qos int) string {
	return p.keep(name, mqttio.Read(p.s, []string{url}, filters, tg.readOptions(mqttio.ClientID(clientID), mqttio.QoS(qos))...))
}

// TestQoS reads at QoS 0, 1 and 2 what is published at the same QoS: every
// message arrives, with the QoS the broker grants (RabbitMQ grants at most
// 1: a QoS 2 read gets QoS 1 deliveries, still at least once).
func TestQoS(t *testing.T) {
	forEach(t, func(t *testing.T, tg *target) {
		p := newPipeline(t)
		keys := make([]string, 3)
		for q := range keys {
			keys[q] = p.read(tg, fmt.Sprint("qos", q), tg.url, id(t, fmt.Sprint("-q", q)), []string{fmt.Sprintf("%s/%d/#", root(t), q)}, q)
		}
		r := p.run()
		pub := client(t, tg, tg.pubURL, id(t, "-pub"), true)
		for q, key := range keys {
			probe(t, pub, fmt.Sprintf("%s/%d/probe", root(t), q), r, key)
		}
		const n = 20
		for q := range keys {
			publish(t, pub, fmt.Sprintf("%s/%d/x", root(t), q), byte(q), false, "m", n)
		}
		for q, key := range keys {
			got := await(t, key, n, payloadPrefix("m-"), r)
			require.Len(t, distinct(got), n, "QoS %d", q)
			for _, m := range got {
				require.Equal(t, min(byte(q), tg.maxQoS), m.QoS, "QoS %d read, delivered as", q)
			}
		}
	})
}

// TestWildcards reads with '+' and '#' filters: exactly the matching
// topics arrive, each with its concrete topic. RabbitMQ maps topics to AMQP
// routing keys, where '.' separates words: "dev.1" is two levels there, and
// '+' does not match it.
func TestWildcards(t *testing.T) {
	forEach(t, func(t *testing.T, tg *target) {
		top := root(t)
		p := newPipeline(t)
		key := p.read(tg, "wild", tg.url, id(t, ""), []string{top + "/+/t", top + "/d1/#"}, 1)
		r := p.run()
		pub := client(t, tg, tg.pubURL, id(t, "-pub"), true)
		probe(t, pub, top+"/p/t", r, key)

		unmatched := []string{top + "/d2/u", top + "/d2/t/x", top + "x/d1/t"}
		matched := []string{top + "/d2/t", top + "/d1/x/y", top + "/d1"}
		if tg.dotSplitsLevel {
			unmatched = append(unmatched, top+"/dev.1/t")
		} else {
			matched = append(matched, top+"/dev.1/t")
		}
		for _, topic := range append(unmatched, matched...) {
			wait(t, pub.Publish(topic, 1, false, "w "+topic))
		}
		// A sentinel published last: once it is in, so is everything else.
		wait(t, pub.Publish(top+"/s/t", 1, false, "sentinel"))
		await(t, key, 1, payloadPrefix("sentinel"), r)
		got := filter(received.get(key), payloadPrefix("w "))
		topics := map[string]bool{}
		for _, m := range got {
			require.Equal(t, "w "+m.Topic, string(m.Payload), "the concrete topic")
			topics[m.Topic] = true
		}
		for _, topic := range matched {
			require.True(t, topics[topic], "%s matches; got %v", topic, topics)
		}
		require.Len(t, got, len(matched), "each matching message once: %v", topics)
	})
}

// TestRetained publishes retained messages before the reads subscribe:
// a read of the exact topic gets them with Retained set; a read with a
// wildcard only where the broker supports that (not RabbitMQ, whose
// retained store also is per node).
func TestRetained(t *testing.T) {
	forEach(t, func(t *testing.T, tg *target) {
		top := root(t)
		same := client(t, tg, tg.url, id(t, "-pub"), true)
		wait(t, same.Publish(top+"/r/x", 1, true, "kept"))
		cluster := tg.pubURL != tg.url
		if cluster {
			other := client(t, tg, tg.pubURL, id(t, "-far"), true)
			wait(t, other.Publish(top+"/f/x", 1, true, "far"))
		}
		p := newPipeline(t)
		exact := p.read(tg, "exact", tg.url, id(t, "-exact"), []string{top + "/r/x"}, 1)
		wild := p.read(tg, "wild", tg.url, id(t, "-wild"), []string{top + "/r/+"}, 1)
		far := p.read(tg, "far", tg.url, id(t, "-farread"), []string{top + "/f/x"}, 1)
		r := p.run()
		// Retained messages are sent on subscribe, before anything
		// published later: once a probe is in, a retained message is too.
		probe(t, same, top+"/r/x", r, exact, wild)
		probe(t, same, top+"/f/x", r, far)

		retained := func(key, payload string) bool {
			for _, m := range received.get(key) {
				if string(m.Payload) == payload {
					require.True(t, m.Retained, "%s is flagged retained", payload)
					return true
				}
			}
			return false
		}
		require.True(t, retained(exact, "kept"), "the exact topic's read gets the retained message")
		require.Equal(t, tg.retainedWildcard, retained(wild, "kept"), "a wildcard read gets the retained message")
		if cluster {
			require.Equal(t, tg.retainedClusterWide, retained(far, "far"), "a retained message published on another node")
		}
	})
}

// TestSharedSubscription reads with two readers on a shared subscription
// next to a plain read: where the broker has shared subscriptions each
// message reaches the group once. Elsewhere the group gets nothing (use one
// reader there): RabbitMQ and aedes take $share/... as a plain filter that
// matches no topic; ejabberd closes the connection on such a SUBSCRIBE, and
// mqttio reconnects with backoff. At MQTT 5 ejabberd's CONNACK says it has
// no shared subscriptions, and the read fails at once, saying so.
func TestSharedSubscription(t *testing.T) {
	forEach(t, func(t *testing.T, tg *target) {
		top := root(t)
		if tg.proto == 5 {
			c := dial5(t, tg, tg.url, id(t, "-connack"), 0)
			require.Equal(t, !tg.v5.noShared, c.sharedAvailable(), "Shared Subscription Available of the CONNACK")
			if tg.v5.noShared {
				p := newPipeline(t)
				p.keep("shared", mqttio.Read(p.s, []string{tg.url}, []string{top + "/#"},
					tg.readOptions(mqttio.ClientID(id(t, "-g")), mqttio.Readers(2), mqttio.QoS(1), mqttio.MaxReadTime(timeout/2))...))
				require.ErrorContains(t, runBounded(p), "does not support shared subscriptions")
				return
			}
		}
		p := newPipeline(t)
		shared := p.keep("shared", mqttio.Read(p.s, []string{tg.url}, []string{top + "/#"},
			tg.readOptions(mqttio.ClientID(id(t, "-g")), mqttio.Readers(2), mqttio.QoS(1))...))
		plain := p.read(tg, "plain", tg.url, id(t, "-plain"), []string{top + "/#"}, 1)
		r := p.run()
		pub := client(t, tg, tg.pubURL, id(t, "-pub"), true)
		probe(t, pub, top+"/p", r, plain)

		// Enough for the broker to balance; a broker that holds a reader to a
		// small window (ejabberd: 1) costs a checkpoint per window. Fewer at
		// MQTT 5, where the balancing was seen at 3.1.1 already: the suite's
		// time.
		n := min(100, 20*tg.window())
		if tg.proto == 5 {
			n = min(n, 40)
		}
		switch {
		case tg.shared:
			probe(t, pub, top+"/p", r, shared)
			publish(t, pub, top+"/x", 1, false, "s", n)
			await(t, plain, n, payloadPrefix("s-"), r)
			got := await(t, shared, n, payloadPrefix("s-"), r)
			require.Len(t, distinct(got), n)
			wait(t, pub.Publish(top+"/x", 1, false, "sentinel"))
			await(t, shared, 1, payloadPrefix("sentinel"), r)
			require.Len(t, filter(received.get(shared), payloadPrefix("s-")), n, "each message reaches the group once")
		default:
			publish(t, pub, top+"/x", 1, false, "s", n)
			await(t, plain, n, payloadPrefix("s-"), r)
			require.Empty(t, received.get(shared), "the group gets nothing: %s", tg.sharedNote)
		}
	})
}

// TestInflightWindow reads a backlog where the broker holds its readers to
// a window: at MQTT 3.1.1 with InflightWindow set to the window the broker
// enforces (RabbitMQ mqtt.prefetch 10, Mosquitto max_inflight_messages 5
// here), at MQTT 5 without, the reader taking the broker's Receive Maximum
// from its CONNACK. The read completes. Where the broker has a window, a
// plain client that does not acknowledge gets exactly that many messages;
// at MQTT 5 a client that announces a Receive Maximum gets that many
// instead, unless the broker ignores it (ejabberd).
func TestInflightWindow(t *testing.T) {
	forEach(t, func(t *testing.T, tg *target) {
		top := root(t)
		// A few windows: more cost a checkpoint each. At MQTT 5 fewer (the
		// suite's time): still three of Mosquitto's.
		n := 3 * min(tg.window(), 20)
		if tg.proto == 5 {
			n = 3 * min(tg.window(), mosquittoInflight)
		}
		prime(t, tg, id(t, "-0"), top+"/#")
		pub := client(t, tg, tg.pubURL, id(t, "-pub"), true)
		publish(t, pub, top+"/x", 1, false, "m", n)
		p := newPipeline(t)
		key := p.keep("read", mqttio.Read(p.s, []string{tg.url}, []string{top + "/#"},
			tg.readOptions(mqttio.ClientID(id(t, "")), mqttio.MaxRecords(int64(n)))...))
		require.NoError(t, runBounded(p))
		require.Len(t, distinct(received.get(key)), n)

		if tg.proto == 5 {
			checkReceiveMaximum(t, tg, pub)
			return
		}
		if tg.inflight == 0 || tg.windowHoldsQoS0 {
			return // no window, or no sentinel that passes it (ejabberd: 1, measured by hand)
		}
		// A client that does not acknowledge is held to the window.
		slowID := id(t, "-slow")
		prime(t, tg, slowID, top+"/slow")
		publish(t, pub, top+"/slow", 1, false, "w", 3*tg.inflight)
		held := make(chan paho.Message, 1000) // room for the probes too
		o := paho.NewClientOptions().AddBroker(tg.url).SetClientID(slowID).SetCleanSession(false).
			SetUsername(tg.user).SetPassword(tg.password).SetProtocolVersion(4).SetAutoReconnect(false).
			SetAutoAckDisabled(true).SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { held <- m })
		slow := paho.NewClient(o)
		wait(t, slow.Connect())
		defer slow.Disconnect(0)
		wait(t, slow.Subscribe(top+"/sentinel", 0, func(_ paho.Client, m paho.Message) { held <- m }))
		got := countHeld(t, pub, top+"/sentinel", func(wait time.Duration) (string, bool) {
			select {
			case m := <-held:
				return string(m.Payload()), true
			case <-time.After(wait):
				return "", false
			}
		})
		require.Equal(t, tg.inflight, got, "unacknowledged messages the broker sent")
	})
}

// checkReceiveMaximum checks the MQTT 5 flow control of tg: the Receive
// Maximum its CONNACK announces, and how many unacknowledged QoS 1
// messages it sends a client that announces none, and one that announces
// a window above the broker's own.
func checkReceiveMaximum(t *testing.T, tg *target, pub paho.Client) {
	t.Helper()
	top := root(t)
	const announced = 8
	for _, announce := range []uint16{0, announced} {
		c := dial5(t, tg, tg.url, id(t, fmt.Sprint("-slow", announce)), announce)
		require.Equal(t, tg.v5.receiveMaximum, c.receiveMaximum(), "the Receive Maximum of the CONNACK")
		if tg.windowHoldsQoS0 {
			return // no sentinel passes the window (ejabberd: 1 whatever the client announces, measured by hand)
		}
		topic := fmt.Sprintf("%s/slow%d", top, announce)
		for _, f := range []string{topic + "/x", topic + "/sentinel"} {
			code, err := c.subscribe(t, f, 1)
			require.NoError(t, err)
			require.Less(t, code, byte(0x80), "SUBACK of %s", f)
		}
		const published = 3 * announced
		publish(t, pub, topic+"/x", 1, false, "w", published)
		got := countHeld(t, pub, topic+"/sentinel", func(wait time.Duration) (string, bool) {
			select {
			case m := <-c.in:
				return string(m.Payload), true
			case <-time.After(wait):
				return "", false
			}
		})
		want := tg.v5.inflight
		if announce > 0 && !tg.v5.ignoresReceiveMaximum {
			want = announced
		} else if want == 0 {
			want = published // no window
		}
		require.Equal(t, want, got, "unacknowledged messages the broker sent a client announcing Receive Maximum %d", announce)
	}
}

// countHeld publishes QoS 0 probes to sentinel until one arrives through
// next (which waits at most its argument for a message's payload), and
// returns how many other messages arrived before it: QoS 0 is not held
// back by an inflight window, so the probe comes after what the broker was
// willing to send.
func countHeld(t *testing.T, pub paho.Client, sentinel string, next func(wait time.Duration) (string, bool)) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got := 0
	for i := 0; ; i++ {
		require.True(t, time.Now().Before(deadline), "the sentinel did not arrive")
		pub.Publish(sentinel, 0, false, fmt.Sprintf("probe-%d", i))
		for {
			payload, ok := next(100 * time.Millisecond)
			if !ok {
				break
			}
			if strings.HasPrefix(payload, "probe") {
				return got
			}
			got++
		}
	}
}

// TestTLS reads a backlog over the broker's TLS listener trusting the
// test CA, and is refused, naming the reason, when it trusts another CA.
func TestTLS(t *testing.T) {
	forEach(t, func(t *testing.T, tg *target) {
		top := root(t)
		const n = 10
		prime(t, tg, id(t, "-0"), top+"/#")
		pub := client(t, tg, tg.pubURL, id(t, "-pub"), true)
		publish(t, pub, top+"/x", 1, false, "m", n)

		p := newPipeline(t)
		key := p.keep("tls", mqttio.Read(p.s, []string{tg.tlsURL}, []string{top + "/#"},
			tg.readOptions(mqttio.ClientID(id(t, "")), mqttio.TLSCAFile(pki.CAFile), mqttio.MaxRecords(n))...))
		require.NoError(t, runBounded(p))
		require.Len(t, distinct(received.get(key)), n)

		if tg.proto == 5 {
			return // the refusal is the client's, the same with every broker: checked at 3.1.1, and at 5 in mqttio's tests
		}
		p = newPipeline(t)
		p.keep("untrusted", mqttio.Read(p.s, []string{tg.tlsURL}, []string{top + "/#"},
			tg.readOptions(mqttio.ClientID(id(t, "-untrusted")), mqttio.TLSCAFile(pki.OtherCAFile), mqttio.MaxRecords(1))...))
		require.ErrorContains(t, runBounded(p), "certificate is not trusted")
	})
}

// runBounded runs a pipeline of bounded reads to its end.
func runBounded(p *pipeline) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	defer cancel()
	_, err := beam.Run(ctx, "prism", p.p)
	return err
}

// TestMQTT5AtMQTT3Brokers reads at MQTT 5 from the brokers that do not
// speak it: the read fails, naming ProtocolVersion(3), whether the broker
// refuses with the MQTT 3.1.1 return code (aedes: at once) or closes the
// connection (RabbitMQ 3.10: mqttio retries, and the read that never
// connected fails when its time is up).
func TestMQTT5AtMQTT3Brokers(t *testing.T) {
	for _, b := range brokers {
		if b.caps.v5 != nil {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			tg := b.get(t).at(5)
			p := newPipeline(t)
			p.keep("read", mqttio.Read(p.s, []string{tg.url}, []string{root(t) + "/#"}, mqttio.ClientID(id(t, "")),
				mqttio.Credentials(tg.user, tg.password), mqttio.ProtocolVersion(5), mqttio.MaxReadTime(2*time.Second)))
			require.ErrorContains(t, runBounded(p), "ProtocolVersion(3)", tg.v5Refusal)
		})
	}
}

// TestUserProperties publishes at MQTT 5 with user properties and a
// content type to every broker that speaks MQTT 5: an MQTT 5 read gets them
// in Message, in order; an MQTT 3.1.1 read of the same message gets its
// payload without them.
func TestUserProperties(t *testing.T) {
	for _, b := range brokers {
		if b.caps.v5 == nil {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			tg := b.get(t)
			v5, v3 := tg.at(5), tg.at(4)
			top := root(t)
			prime(t, v5, id(t, "-5-0"), top+"/#")
			prime(t, v3, id(t, "-3-0"), top+"/#")
			pub := client5(t, tg, tg.pubURL, id(t, "-pub"), 0)
			require.Less(t, pub.Publish(t, &paho5.Publish{Topic: top + "/x", QoS: 1, Payload: []byte("m-0"), Properties: &paho5.PublishProperties{
				User: paho5.UserProperties{{Key: "site", Value: "north"}, {Key: "fw", Value: "1.2"}}, ContentType: "text/plain"}}), byte(0x80))

			p := newPipeline(t)
			keys := map[int]string{}
			for _, at := range []*target{v5, v3} {
				keys[at.proto] = p.keep(fmt.Sprint("mqtt", at.proto), mqttio.Read(p.s, []string{tg.url}, []string{top + "/#"},
					at.readOptions(mqttio.ClientID(id(t, fmt.Sprint("-", at.version()))), mqttio.MaxRecords(1))...))
			}
			require.NoError(t, runBounded(p))
			for proto, key := range keys {
				got := received.get(key)
				require.Len(t, got, 1, "MQTT level %d", proto)
				require.Equal(t, "m-0", string(got[0].Payload))
				if proto == 5 {
					require.Equal(t, mqttio.UserProperties{{Name: "site", Value: "north"}, {Name: "fw", Value: "1.2"}}, got[0].UserProperties)
					require.Equal(t, "text/plain", got[0].ContentType)
				} else {
					require.Empty(t, got[0].UserProperties, "an MQTT 3.1.1 read")
					require.Empty(t, got[0].ContentType, "an MQTT 3.1.1 read")
				}
			}
		})
	}
}
