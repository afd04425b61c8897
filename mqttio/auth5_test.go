package mqttio

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// Enhanced authentication runs a real challenge/response with the embedded
// broker's SCRAM-SHA-256 hook: the password is never sent, and a wrong one
// fails the read at once with the broker's reason.
func TestReadEnhancedAuthSCRAM(t *testing.T) {
	b := startEmbedded(t, embeddedbroker.SCRAM("reader", "s3cret"))
	id := safeID(t)
	scram := func(password string) []Option {
		return []Option{v5, Auth("SCRAM-SHA-256", SCRAMSHA256), Credentials("reader", password)}
	}
	readOpts := func(password string, more ...ReadOption) []ReadOption {
		var opts []ReadOption
		for _, o := range scram(password) {
			opts = append(opts, o)
		}
		return append(opts, more...)
	}

	// The broker admits SCRAM clients only: a first bounded read creates
	// the reader's session, a writer publishes through the same exchange,
	// and the reader gets it all.
	got, err := readN(t, b.URL(), "sec/#", 1, readOpts("s3cret", ClientID(id), MaxReadTime(300*time.Millisecond))...)
	require.NoError(t, err)
	require.Empty(t, got)
	p, s := beam.NewPipelineWithRoot()
	wopts := []WriteOption{ClientID(id + "-w")}
	for _, o := range scram("s3cret") {
		wopts = append(wopts, o)
	}
	passert.Empty(s, Write(s, []string{b.URL()}, beam.CreateList(s, numberedPublications(10, fixedTopic("sec/x"))), wopts...))
	ptest.RunAndValidate(t, p)
	got, err = readN(t, b.URL(), "sec/#", 10, readOpts("s3cret", ClientID(id))...)
	require.NoError(t, err)
	require.Equal(t, expected("m", 10), got)

	_, err = readN(t, b.URL(), "sec/#", 1, readOpts("wrong", ClientID(id+"-bad"))...)
	require.ErrorContains(t, err, "bad user name or password (0x86")
	require.NotContains(t, err.Error(), "wrong")

	// Mosquitto offers no enhanced authentication: it says so.
	m := brokertest.Mosquitto(t)
	_, err = readN(t, m.URL(), "sec/#", 1, readOpts("s3cret", ClientID(id))...)
	require.ErrorContains(t, err, "bad authentication method (0x8c)")
}

// The options of MQTT 5 are refused with MQTT 3.1.1, naming themselves.
func TestV5OptionsNeedProtocolVersion5(t *testing.T) {
	_, s := beam.NewPipelineWithRoot()
	for want, opt := range map[string]ReadOption{
		"option Auth":          Auth("SCRAM-SHA-256", SCRAMSHA256),
		"option SessionExpiry": SessionExpiry(time.Hour),
	} {
		_, err := TryRead(s, []string{"tcp://h:1883"}, []string{"a"}, opt)
		require.ErrorContains(t, err, want)
		require.ErrorContains(t, err, "ProtocolVersion(5)")
	}
	for want, opt := range map[string]ReadOption{
		"option ProtocolVersion": ProtocolVersion(4),
		"option SessionExpiry":   SessionExpiry(500 * time.Millisecond),
		"option Auth":            Auth("", SCRAMSHA256),
	} {
		_, err := TryRead(s, []string{"tcp://h:1883"}, []string{"a"}, v5, opt)
		require.ErrorContains(t, err, want)
	}
	_, err := TryRead(s, []string{"tcp://h:1883"}, []string{"a"}, v5, Auth("X", nil))
	require.ErrorContains(t, err, "option Auth")
}

// A subscription the broker refuses fails the read with the broker's reason
// and the filter (mosquitto 2.0.11 grants every subscription, see
// brokertest.MosquittoACL).
func TestReadV5RefusedSubscription(t *testing.T) {
	b := startEmbedded(t, embeddedbroker.ACL(func(_, topic string, _ bool) bool { return topic != "secret/#" }))
	_, err := readN(t, b.URL(), "secret/#", 1, v5, ClientID(safeID(t)))
	require.ErrorContains(t, err, `broker refused the subscription to "secret/#"`)
	require.ErrorContains(t, err, "not authorized (0x87)")
}

// A refused CONNECT names the broker's reason.
func TestReadV5RefusedConnect(t *testing.T) {
	m := brokertest.Mosquitto(t, brokertest.MosquittoAuth("reader", "s3cret"))
	_, err := readN(t, m.URL(), "a/#", 1, v5, ClientID(safeID(t)), Credentials("reader", "wrong"))
	require.ErrorContains(t, err, "broker refused the connection: ")
	require.ErrorContains(t, err, "(0x8")
	require.NotContains(t, err.Error(), "wrong")
}

// The reader keeps the keep-alive the broker assigns (2s here, the reader
// asked for 60s): it pings in time, and the broker never drops it.
func TestReadV5ServerKeepAlive(t *testing.T) {
	pings := make(chan string, 100)
	b := startEmbedded(t, embeddedbroker.ServerKeepAlive(2*time.Second), embeddedbroker.OnPing(func(id string) { pings <- id }))
	id := safeID(t)
	p, s := beam.NewPipelineWithRoot()
	collect(s, t, Read(s, []string{b.URL()}, []string{"ka/#"}, v5, ClientID(id), KeepAlive(time.Minute), MaxReadTime(4500*time.Millisecond)))
	res := ptest.RunAndValidate(t, p)
	require.Zero(t, counter(t, res, "reconnects"), "mochi drops a client silent for 3s")
	n := 0
	for len(pings) > 0 {
		if <-pings == id+"-0" {
			n++
		}
	}
	require.GreaterOrEqual(t, n, 2)

	m := brokertest.Mosquitto(t, brokertest.MosquittoSettings("max_keepalive 10"))
	fn, r := newTestReadFn(t, m.URL(), []string{"ka/#"}, v5, ClientID(id), KeepAlive(time.Minute), IdleWatermark(10*time.Millisecond))
	runBundle(t, fn, r)
	sess, _ := sessions.Get(r.ClientID)
	require.Equal(t, 10*time.Second, sess.conn.limits().keepAlive)
}

// A reader whose client id another worker's reader took over stays closed:
// the broker ended its connection (MQTT 5 says why), and nothing reconnects
// it, so the new owner keeps the session.
func TestReadV5StaysClosedWhenTakenOver(t *testing.T) {
	b := startEmbedded(t)
	id := safeID(t)
	withBacklog(t, b.URL(), id, "to/#", "to/x", 10)
	fnA, r := newTestReadFn(t, b.URL(), []string{"to/#"}, v5, ClientID(id), MaxBundle(10, time.Minute))
	first := runBundle(t, fnA, r)
	require.Len(t, first.msgs, 10)
	a, _ := sessions.Get(r.ClientID)
	sessions.Remove(a) // worker A keeps its session; worker B starts one of its own
	t.Cleanup(a.Close)

	fnB, _ := newTestReadFn(t, b.URL(), []string{"to/#"}, v5, ClientID(id), MaxBundle(10, time.Minute))
	second := runBundle(t, fnB, first.residual)
	require.ElementsMatch(t, payloads(first.msgs), payloads(second.msgs), "B gets what A had not acknowledged")

	deadline := time.After(testTimeout)
	for {
		up, err := a.isConnected()
		if !up {
			require.ErrorContains(t, err, "session taken over (0x8e")
			break
		}
		select {
		case <-deadline:
			t.Fatal("A did not lose its connection")
		case <-time.After(5 * time.Millisecond):
		}
	}
	// B keeps reading: A does not come back to take the id.
	publish(t, newClient(t, b.URL(), id+"-pub2", true), 1, 20, fixedTopic("to/x"), "n")
	var got []string
	next := second.residual
	for i := 0; i < 100 && len(unique(got)) < 20; i++ {
		res := runBundle(t, fnB, next)
		got = append(got, payloads(res.msgs)...)
		next = res.residual
	}
	require.ElementsMatch(t, expected("n", 20), unique(got))
	bs, _ := sessions.Get(r.ClientID)
	up, _ := bs.isConnected()
	require.True(t, up)
}
