package brokertest_test

import (
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/certs"
)

func trusting(t *testing.T, c certs.Certs) *paho.ClientOptions {
	t.Helper()
	tc, err := certs.ClientTLSConfig(c.CAFile, "", "")
	require.NoError(t, err)
	return paho.NewClientOptions().SetTLSConfig(tc)
}

func TestEjabberd(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	e := brokertest.Ejabberd(t, brokertest.EjabberdTLS(c))

	// ejabberd wants a user name; any one will do.
	_, err = brokertest.TryConnect(brokertest.ClientOptions(e.URL(), "nameless").SetProtocolVersion(4))
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)

	user := func(o *paho.ClientOptions) *paho.ClientOptions {
		return o.SetUsername("user").SetPassword("any").SetProtocolVersion(4)
	}
	sub := user(brokertest.ClientOptions(e.TLSURL(), "sub"))
	sub.SetTLSConfig(trusting(t, c).TLSConfig)
	pubSub(t, sub, user(publisher(e.URL())))

	require.NoError(t, e.Kill())
	require.NoError(t, e.Start())
	pubSub(t, user(brokertest.ClientOptions(e.URL(), "sub")), user(publisher(e.URL())))
}

func TestAedes(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	a := brokertest.Aedes(t, brokertest.AedesTLS(c))
	sub := brokertest.ClientOptions(a.TLSURL(), "a-client-id-longer-than-23-characters")
	sub.SetTLSConfig(trusting(t, c).TLSConfig)
	pubSub(t, sub, publisher(a.URL()))
}

// TestHAProxy puts a TLS-terminating balancer in front of two brokers: a
// client id goes back to the broker it was on, and when that broker dies
// the client is let through to the other one.
func TestHAProxy(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)
	b1, b2 := brokertest.Mosquitto(t), brokertest.Mosquitto(t)
	h := brokertest.HAProxy(t, []string{b1.URL()[len("tcp://"):], b2.URL()[len("tcp://"):]}, brokertest.HAProxyTLS(c))
	require.Regexp(t, `^ssl://127\.0\.0\.1:\d+$`, h.URL())

	via := func(id string) *paho.ClientOptions {
		o := brokertest.ClientOptions(h.URL(), id)
		return o.SetTLSConfig(trusting(t, c).TLSConfig)
	}
	// Subscribed through the balancer, "sticky" receives what is published
	// on the broker it landed on, and lands there again on reconnecting.
	brokers := map[string]*brokertest.MosquittoBroker{b1.URL(): b1, b2.URL(): b2}
	landed := func() string {
		t.Helper()
		in := brokertest.NewInbox(2)
		sticky := brokertest.Connect(t, via("sticky"))
		defer sticky.Disconnect(0)
		brokertest.Await(t, sticky.Subscribe("lb/#", 1, in.Handle))
		for url := range brokers {
			pub := brokertest.Connect(t, publisher(url))
			brokertest.Await(t, pub.Publish("lb/x", 1, false, url))
			pub.Disconnect(0)
		}
		return string(in.Next(t, 1)[0].Payload())
	}
	first := landed()
	for range 3 {
		require.Equal(t, first, landed(), "a client id goes back to its broker")
	}
	brokers[first].Stop()
	delete(brokers, first)
	require.NotEqual(t, first, landed(), "with its broker down, the client goes to the other one")
}
