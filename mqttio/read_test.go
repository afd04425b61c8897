package mqttio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/internal/ports"
)

func startEmbedded(t testing.TB, opts ...embeddedbroker.Option) *embeddedbroker.Broker {
	t.Helper()
	b, err := embeddedbroker.Start(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestReadBoundedByRecords(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startEmbedded(t)
		id := safeID(t)
		primeSession(t, b.URL(), id+"-0", "devices/+/telemetry", 1)
		pub := newClient(t, b.URL(), "pub", true)
		publish(t, pub, 1, 200, func(i int) string { return "devices/d" + string(rune('a'+i%3)) + "/telemetry" }, "m")

		p, s := beam.NewPipelineWithRoot()
		msgs := Read(s, []string{b.URL()}, []string{"devices/+/telemetry"}, v, ClientID(id), MaxRecords(200))
		key := collect(s, t, msgs)
		ptest.RunAndValidate(t, p)

		got := collected.take(key)
		require.Equal(t, expected("m", 200), payloads(got))
		for _, m := range got {
			require.Contains(t, []string{"devices/da/telemetry", "devices/db/telemetry", "devices/dc/telemetry"}, m.Topic)
			require.Equal(t, byte(1), m.QoS)
			require.False(t, m.ReceivedAt.IsZero())
		}
	})
}

func TestReadQoSLevels(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startWatched(t)
		for _, qos := range []byte{0, 1, 2} {
			t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
				id := safeID(t)
				p, s := beam.NewPipelineWithRoot()
				key := collect(s, t, Read(s, []string{b.URL()}, []string{"q/#"}, v, ClientID(id), QoS(int(qos)), MaxRecords(100)))
				run := runAsync(t, p)
				b.awaitSubscribed(t, id+"-0")
				publish(t, newClient(t, b.URL(), id+"-pub", true), qos, 100, fixedTopic("q/x"), "m")
				require.NoError(t, run.wait())

				got := collected.take(key)
				require.Equal(t, expected("m", 100), payloads(got))
				for _, m := range got {
					require.Equal(t, qos, m.QoS)
					require.Equal(t, "q/x", m.Topic)
				}
			})
		}
	})
}

func TestReadMetrics(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startEmbedded(t)
		id := safeID(t)
		withBacklog(t, b.URL(), id, "mt/#", "mt/x", 40)

		p, s := beam.NewPipelineWithRoot()
		collect(s, t, Read(s, []string{b.URL()}, []string{"mt/#"}, v, ClientID(id), MaxRecords(40)))
		res := ptest.RunAndValidate(t, p)
		require.Equal(t, int64(40), counter(t, res, "messages_read"))
		require.Equal(t, int64(40*len("m-10")-10), counter(t, res, "bytes_read"))
		require.Equal(t, int64(40), counter(t, res, "acks"), "every QoS 1 message is acknowledged")
		require.Equal(t, int64(0), counter(t, res, "reconnects"))
	})
}

func TestSharedSubscriptionSplitsTraffic(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		const readers, total = 3, 300
		b := startWatched(t)
		id := safeID(t)
		p, s := beam.NewPipelineWithRoot()
		key := collect(s, t, Read(s, []string{b.URL()}, []string{"sh/+/t"}, v, ClientID(id), Readers(readers)))
		run := runAsync(t, p)
		ids := []string{id + "-0", id + "-1", id + "-2"}
		b.awaitSubscribed(t, ids...)
		publish(t, newClient(t, b.URL(), id+"-pub", true), 1, total, func(i int) string { return fmt.Sprintf("sh/d%d/t", i%5) }, "m")
		got := awaitCollected(t, key, total, run)
		run.stop()

		require.ElementsMatch(t, expected("m", total), got)
		sum := 0
		for _, reader := range ids {
			n := b.deliveries(reader)
			require.Positive(t, n, "reader %s got no message: the broker did not balance", reader)
			sum += n
		}
		require.GreaterOrEqual(t, sum, total, "together the readers were sent every message")
	})
}

// counter returns the committed value of an mqttio counter.
func counter(t *testing.T, res beam.PipelineResult, name string) int64 {
	t.Helper()
	var total int64
	for _, c := range res.Metrics().Query(func(r metrics.SingleResult) bool {
		return r.Namespace() == "mqttio" && r.Name() == name
	}).Counters() {
		total += c.Result()
	}
	return total
}

// payloadTime reads the event time a test message carries as "...@{unix ms}".
func payloadTime(m Message) (time.Time, bool) {
	_, ms, ok := strings.Cut(string(m.Payload), "@")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n), true
}

func init() { register.Function1x2(payloadTime) }

// stamps records the event time of each message a pipeline saw, by test.
var stamps = struct {
	sync.Mutex
	m map[string]map[string]int64
}{m: map[string]map[string]int64{}}

// stampFn records each message's payload with its event time under Key.
type stampFn struct{ Key string }

func (f *stampFn) ProcessElement(et beam.EventTime, m Message) {
	stamps.Lock()
	defer stamps.Unlock()
	if stamps.m[f.Key] == nil {
		stamps.m[f.Key] = map[string]int64{}
	}
	stamps.m[f.Key][string(m.Payload)] = int64(et)
}

func init() { register.DoFn2x0[beam.EventTime, Message](&stampFn{}) }

func TestReadEventTimeFromPayload(t *testing.T) {
	b := startEmbedded(t)
	id := safeID(t)
	primeSession(t, b.URL(), id+"-0", "et/#", 1)
	pub := newClient(t, b.URL(), id+"-pub", true)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli()
	a, bb := fmt.Sprintf("a@%d", base), fmt.Sprintf("b@%d", base+1500)
	for _, payload := range []string{a, bb, "no-time"} {
		tok := pub.Publish("et/x", 1, false, payload)
		require.True(t, tok.WaitTimeout(testTimeout))
		require.NoError(t, tok.Error())
	}
	started := time.Now().UnixMilli()

	p, s := beam.NewPipelineWithRoot()
	msgs := Read(s, []string{b.URL()}, []string{"et/#"}, ClientID(id), MaxRecords(3), EventTime(payloadTime))
	beam.ParDo0(s, &stampFn{Key: id}, msgs)
	ptest.RunAndValidate(t, p)

	stamps.Lock()
	got := stamps.m[id]
	stamps.Unlock()
	require.Len(t, got, 3)
	require.Equal(t, base, got[a])
	require.Equal(t, base+1500, got[bb])
	// Without a time in the payload, the receive time is the event time.
	require.GreaterOrEqual(t, got["no-time"], started-1000)
	require.LessOrEqual(t, got["no-time"], time.Now().UnixMilli())
}

func TestReadOnDirectRunner(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startEmbedded(t)
		id := safeID(t)
		withBacklog(t, b.URL(), id, "dr/#", "dr/x", 50)

		p, s := beam.NewPipelineWithRoot()
		key := collect(s, t, Read(s, []string{b.URL()}, []string{"dr/#"}, v, ClientID(id), MaxRecords(50)))
		_, err := beam.Run(context.Background(), "direct", p)
		require.NoError(t, err)
		require.Equal(t, expected("m", 50), payloads(collected.take(key)))

		// Everything was acknowledged: a new session of the same client gets
		// nothing more.
		primeSession(t, b.URL(), id+"-0", "dr/#", 1)
	})
}

func TestUnboundedReadOnDirectRunnerNamesPrism(t *testing.T) {
	b := startEmbedded(t)
	p, s := beam.NewPipelineWithRoot()
	collect(s, t, Read(s, []string{b.URL()}, []string{"x/#"}, ClientID(safeID(t))))
	_, err := beam.Run(context.Background(), "direct", p)
	require.ErrorContains(t, err, "prism")
	require.ErrorContains(t, err, "MaxRecords or MaxReadTime")
}

func TestReadStopsAfterMaxReadTime(t *testing.T) {
	b := startEmbedded(t)
	p, s := beam.NewPipelineWithRoot()
	msgs := Read(s, []string{b.URL()}, []string{"quiet/#"}, ClientID(safeID(t)), MaxReadTime(300*time.Millisecond))
	passert.Empty(s, msgs)
	ptest.RunAndValidate(t, p)
}

func init() {
	register.Function2x2(lookUpTestPassword)
	register.Function2x2(readTestKey)
}

// readTestKey stands in for a secret store of keys: ref names a file.
func readTestKey(_ context.Context, ref string) (string, error) {
	b, err := os.ReadFile(ref)
	return string(b), err
}

// lookUpTestPassword stands in for a secret store.
func lookUpTestPassword(_ context.Context, ref string) (string, error) {
	if ref == "projects/p/secrets/mqtt/versions/1" {
		return "s3cret", nil
	}
	return "", fmt.Errorf("secret %s not found", ref)
}

// CredentialsFrom looks the password up on the worker; a lookup that fails
// keeps the reader from connecting (retried, logged) and names the secret.
func TestReadCredentialsFrom(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startEmbedded(t, embeddedbroker.Auth("reader", "s3cret"))
		id := safeID(t)
		withCreds := func(o *pahoOptions) { o.SetUsername("reader").SetPassword("s3cret") }
		primeSession(t, b.URL(), id+"-0", "sec/#", 1, withCreds)
		publish(t, newClient(t, b.URL(), id+"-pub", true, withCreds), 1, 10, fixedTopic("sec/x"), "m")

		p, s := beam.NewPipelineWithRoot()
		key := collect(s, t, Read(s, []string{b.URL()}, []string{"sec/#"}, v, ClientID(id), MaxRecords(10),
			CredentialsFrom("reader", lookUpTestPassword, "projects/p/secrets/mqtt/versions/1")))
		ptest.RunAndValidate(t, p)
		require.Equal(t, expected("m", 10), payloads(collected.take(key)))

		cfg, err := newReadConfig([]ReadOption{CredentialsFrom("reader", lookUpTestPassword, "projects/p/secrets/other/versions/1")})
		require.NoError(t, err)
		_, err = cfg.dialSpec([]string{b.URL()}, id)
		require.ErrorContains(t, err, "projects/p/secrets/other/versions/1 not found")
		require.NotContains(t, fmt.Sprint(cfg), "s3cret")

		_, err = newReadConfig([]ReadOption{CredentialsFrom("", lookUpTestPassword, "x")})
		require.ErrorContains(t, err, "CredentialsFrom")
	})
}

// TLSClientCertFrom looks the client key up on the worker: the key is in
// neither the pipeline nor the configuration, and a lookup that fails names
// the key's reference.
func TestReadMutualTLSKeyFrom(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		c, err := certs.GenerateCerts(t.TempDir())
		require.NoError(t, err)
		b := startEmbedded(t, embeddedbroker.TLS(c.ServerCert, c.ServerKey), embeddedbroker.ClientCA(c.CAFile))
		id := safeID(t)
		primeSession(t, b.URL(), id+"-0", "mtls/#", 1)
		publish(t, newClient(t, b.URL(), id+"-pub", true), 1, 10, fixedTopic("mtls/x"), "m")

		opts := []ReadOption{v, ClientID(id), TLSCAFile(c.CAFile), TLSClientCertFrom(c.ClientCert, readTestKey, c.ClientKey)}
		p, s := beam.NewPipelineWithRoot()
		key := collect(s, t, Read(s, []string{b.TLSURL()}, []string{"mtls/#"}, append(opts, MaxRecords(10))...))
		ptest.RunAndValidate(t, p)
		require.Equal(t, expected("m", 10), payloads(collected.take(key)))

		cfg, err := newReadConfig(opts)
		require.NoError(t, err)
		encoded, err := json.Marshal(cfg) // as the pipeline carries it
		require.NoError(t, err)
		pemOf := func(path string) string {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			return base64.StdEncoding.EncodeToString(b)
		}
		assert.Contains(t, string(encoded), pemOf(c.ClientCert))
		assert.NotContains(t, string(encoded), pemOf(c.ClientKey), "the key must not travel with the pipeline")

		missing := filepath.Join(t.TempDir(), "missing-key.pem")
		cfg, err = newReadConfig([]ReadOption{TLSClientCertFrom(c.ClientCert, readTestKey, missing)})
		require.NoError(t, err)
		_, err = cfg.dialSpec([]string{b.TLSURL()}, id)
		require.ErrorContains(t, err, "looking up the TLS client key "+missing)

		for _, o := range []ReadOption{
			TLSClientCertFrom(c.ClientCert, nil, "ref"),
			TLSClientCertFrom(c.ClientCert, readTestKey, ""),
			TLSClientCertFrom(missing, readTestKey, "ref"),
		} {
			_, err = newReadConfig([]ReadOption{o})
			require.ErrorContains(t, err, "TLSClientCertFrom")
		}
	})
}

// A read whose broker cannot be reached says so while it runs
// (LocalReaders: not connected, with the last connection error) and fails at
// its end instead of ending as an empty success.
func TestReadThatNeverConnectsFails(t *testing.T) {
	port, err := ports.Free("127.0.0.1") // nothing listens on it
	require.NoError(t, err)
	id := safeID(t)
	p, s := beam.NewPipelineWithRoot()
	msgs := Read(s, []string{fmt.Sprintf("tcp://127.0.0.1:%d", port)}, []string{"x/#"}, ClientID(id), MaxReadTime(3*time.Second))
	passert.Empty(s, msgs)

	seen := make(chan ReaderState, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			for _, r := range LocalReaders() {
				if r.ClientID == id+"-0" && r.Err != nil {
					seen <- r
					return
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	_, err = beam.Run(context.Background(), "prism", p)
	require.ErrorContains(t, err, "mqttio.Read: reader "+id+"-0 never connected (last error: connecting to tcp://127.0.0.1:")
	require.ErrorContains(t, err, "connection refused")
	select {
	case r := <-seen:
		assert.False(t, r.Connected)
		assert.ErrorContains(t, r.Err, "connection refused")
	case <-time.After(time.Second):
		t.Fatal("LocalReaders never reported the reader's connection error")
	}
}
