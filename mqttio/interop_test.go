package mqttio

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// These tests run the reader against Mosquitto, started by the test on a
// free port with a generated configuration.

func generateCerts(t *testing.T) certs.Certs {
	t.Helper()
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	return c
}

// readN runs a bounded read of n messages from url with opts and returns
// their payloads, or the pipeline's error.
func readN(t *testing.T, url, filter string, n int64, opts ...ReadOption) ([]string, error) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	key := collect(s, t, Read(s, []string{url}, []string{filter}, append(opts, MaxRecords(n))...))
	err := ptest.Run(p)
	return payloads(collected.take(key)), err
}

func TestReadTLS(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		c := generateCerts(t)
		m := brokertest.Mosquitto(t, brokertest.MosquittoTLS(c))
		id := safeID(t)
		withBacklog(t, m.URL(), id, "tls/#", "tls/x", 20)

		got, err := readN(t, m.TLSURL(), "tls/#", 20, v, ClientID(id), TLSCAFile(c.CAFile))
		require.NoError(t, err)
		require.Equal(t, expected("m", 20), got)
	})
}

func TestReadRejectsUntrustedCertificate(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		c := generateCerts(t)
		m := brokertest.Mosquitto(t, brokertest.MosquittoTLS(c))

		_, err := readN(t, m.TLSURL(), "tls/#", 1, v, ClientID(safeID(t)), TLSCAFile(c.OtherCAFile))
		require.Error(t, err)
		require.Contains(t, err.Error(), "certificate is not trusted")

		// With the system's roots only, the test CA is unknown too.
		_, err = readN(t, m.TLSURL(), "tls/#", 1, v, ClientID(safeID(t)+"-sys"))
		require.ErrorContains(t, err, "certificate is not trusted")
	})
}

func TestReadMutualTLS(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		c := generateCerts(t)
		m := brokertest.Mosquitto(t, brokertest.MosquittoTLS(c), brokertest.MosquittoRequireClientCert())
		id := safeID(t)

		_, err := readN(t, m.TLSURL(), "mtls/#", 1, v, ClientID(id+"-nocert"), TLSCAFile(c.CAFile))
		require.ErrorContains(t, err, "refused the handshake")

		// Prime and publish over TLS with the client certificate too: this
		// broker only has the mutual-TLS listener for clients without one.
		tlsConfig, err := certs.ClientTLSConfig(c.CAFile, c.ClientCert, c.ClientKey)
		require.NoError(t, err)
		withTLS := func(o *pahoOptions) { o.SetTLSConfig(tlsConfig) }
		primeSession(t, m.TLSURL(), id+"-0", "mtls/#", 1, withTLS)
		publish(t, newClient(t, m.TLSURL(), id+"-pub", true, withTLS), 1, 10, fixedTopic("mtls/x"), "m")

		got, err := readN(t, m.TLSURL(), "mtls/#", 10, v, ClientID(id), TLSCAFile(c.CAFile), TLSClientCert(c.ClientCert, c.ClientKey))
		require.NoError(t, err)
		require.Equal(t, expected("m", 10), got)
	})
}

func TestReadCredentials(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		const password = "s3cret-Pa55"
		m := brokertest.Mosquitto(t, brokertest.MosquittoAuth("reader", password))
		id := safeID(t)

		_, err := readN(t, m.URL(), "auth/#", 1, v, ClientID(id+"-bad"), Credentials("reader", "wrong-"+password))
		require.Error(t, err)
		require.Contains(t, err.Error(), "bad user name or password")
		require.NotContains(t, err.Error(), password, "the password must not appear in errors")

		withCreds := func(o *pahoOptions) { o.SetUsername("reader").SetPassword(password) }
		primeSession(t, m.URL(), id+"-0", "auth/#", 1, withCreds)
		publish(t, newClient(t, m.URL(), id+"-pub", true, withCreds), 1, 10, fixedTopic("auth/x"), "m")
		got, err := readN(t, m.URL(), "auth/#", 10, v, ClientID(id), Credentials("reader", password))
		require.NoError(t, err)
		require.Equal(t, expected("m", 10), got)
	})
}

func TestAtLeastOnceAfterKillMosquitto(t *testing.T) {
	m := brokertest.Mosquitto(t)
	killAndRestart(t, m.URL(), 3, 20)
	// MQTT 5: the window from the broker's CONNACK.
	killAndRestart(t, m.URL(), 5, 0)
}

// With a broker that holds the reader to a small inflight window, the reader
// gets nothing more until it acknowledges, which it does when the residual
// resumes: the read must still complete.
func TestAtLeastOnceAfterKillSmallInflightWindow(t *testing.T) {
	m := brokertest.Mosquitto(t, brokertest.MosquittoMaxInflight(1))
	killAndRestart(t, m.URL(), 3, 1)
	// MQTT 5: the reader announces a window of 1, which mosquitto keeps.
	killAndRestart(t, m.URL(), 5, 1)
}

func TestReadSmallInflightWindow(t *testing.T) {
	m := brokertest.Mosquitto(t, brokertest.MosquittoMaxInflight(1))
	id := safeID(t)
	withBacklog(t, m.URL(), id, "win/#", "win/x", 200)
	got, err := readN(t, m.URL(), "win/#", 200, ClientID(id), InflightWindow(1))
	require.NoError(t, err)
	require.Equal(t, expected("m", 200), got)
}

func TestReadResubscribesAfterBrokerRestart(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		m := brokertest.Mosquitto(t)
		id := safeID(t)
		withBacklog(t, m.URL(), id, "rs/#", "rs/x", 20)

		p, s := beam.NewPipelineWithRoot()
		key := collect(s, t, Read(s, []string{m.URL()}, []string{"rs/#"}, v, ClientID(id)))
		run := runAsync(t, p)
		awaitCollected(t, key, 20, run)

		// The broker restarts without persistence: the session and its
		// subscription are gone, so only a reader that reconnects and subscribes
		// again receives what is published next.
		m.Restart(t)
		pub := newClient(t, m.URL(), id+"-pub2", true)
		deadline := time.After(testTimeout)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; !hasPrefix(key, "probe-"); i++ {
			pub.Publish("rs/x", 1, false, fmt.Sprintf("probe-%d", i))
			select {
			case <-tick.C:
			case <-run.done:
				require.FailNow(t, "pipeline ended", "%v", run.err)
			case <-deadline:
				require.FailNow(t, "the reader did not resubscribe after the broker restarted")
			}
		}
		publish(t, pub, 1, 20, fixedTopic("rs/x"), "n")
		got := awaitCollected(t, key, 20+20+1, run)
		for _, want := range append(expected("m", 20), expected("n", 20)...) {
			require.Contains(t, got, want)
		}
	})
}

func hasPrefix(key, prefix string) bool {
	collected.mu.Lock()
	defer collected.mu.Unlock()
	for _, m := range collected.msgs[key] {
		if strings.HasPrefix(string(m.Payload), prefix) {
			return true
		}
	}
	return false
}

func TestReadFailsOverToTheNextBroker(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startEmbedded(t)
		id := safeID(t)
		withBacklog(t, b.URL(), id, "fo/#", "fo/x", 10)
		dead := closedPortURL(t)

		p, s := beam.NewPipelineWithRoot()
		key := collect(s, t, Read(s, []string{dead, b.URL()}, []string{"fo/#"}, v, ClientID(id), MaxRecords(10), ConnectTimeout(2*time.Second)))
		require.NoError(t, ptest.Run(p))
		require.Equal(t, expected("m", 10), payloads(collected.take(key)))
	})
}

func TestReadOverWebsocket(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startEmbedded(t, embeddedbroker.Websocket())
		id := safeID(t)
		withBacklog(t, b.URL(), id, "ws/#", "ws/x", 10)
		got, err := readN(t, b.WSURL(), "ws/#", 10, v, ClientID(id))
		require.NoError(t, err)
		require.Equal(t, expected("m", 10), got)
	})
}

func TestIdleSessionIsClosed(t *testing.T) {
	b := startEmbedded(t)
	fn, r := newTestReadFn(t, b.URL(), []string{"idle/#"}, ClientID(safeID(t)), SessionIdle(20*time.Millisecond), IdleWatermark(10*time.Millisecond))
	runBundle(t, fn, r)
	deadline := time.After(testTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for sessionOpen(r.ClientID) {
		select {
		case <-tick.C:
		case <-deadline:
			require.FailNow(t, "the idle session was not closed")
		}
	}
}

func sessionOpen(clientID string) bool {
	_, ok := sessions.Get(clientID)
	return ok
}

// closedPortURL is the URL of a loopback port nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "tcp://" + addr
}
