package embeddedbroker_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/internal/scram"
)

// scramAuther is the client's side of SCRAM-SHA-256 for paho.golang.
type scramAuther struct{ c *scram.Client }

func (a *scramAuther) Authenticate(challenge *paho.Auth) *paho.Auth {
	final, err := a.c.Final(challenge.Properties.AuthData)
	if err != nil {
		final = []byte("invalid")
	}
	return &paho.Auth{ReasonCode: 0x18, Properties: &paho.AuthProperties{AuthMethod: scram.Method, AuthData: final}}
}

func (a *scramAuther) Authenticated() {}

func scramConnect(b *embeddedbroker.Broker, user, password string) (*brokertest.Client5, *scram.Client, error) {
	c := scram.NewClient(user, password, "")
	cl, err := brokertest.TryConnect5(b.URL(), brokertest.Options5{
		Connect: paho.Connect{ClientID: "scram-" + password, CleanStart: true, Properties: &paho.ConnectProperties{
			AuthMethod: scram.Method, AuthData: c.First()}},
		Auth: &scramAuther{c: c},
	})
	if cl != nil && err == nil {
		_ = cl.Disconnect(&paho.Disconnect{})
	}
	return cl, c, err
}

func TestSCRAM(t *testing.T) {
	b := brokertest.Embedded(t, embeddedbroker.SCRAM("reader", "s3cret"))

	cl, c, err := scramConnect(b, "reader", "s3cret")
	require.NoError(t, err)
	require.Equal(t, scram.Method, cl.Connack.Properties.AuthMethod)
	require.NoError(t, c.Verify(cl.Connack.Properties.AuthData), "the CONNACK carries the broker's signature")

	_, _, err = scramConnect(b, "reader", "wrong")
	require.ErrorContains(t, err, "0x86")
	_, _, err = scramConnect(b, "someone", "s3cret")
	require.ErrorContains(t, err, "0x86")
	_, err = brokertest.TryConnect5(b.URL(), brokertest.Options5{Connect: paho.Connect{ClientID: "plain", CleanStart: true}})
	require.ErrorContains(t, err, "0x86", "a client without the exchange is refused")
}

func TestACLRefusesWithReasonCodes(t *testing.T) {
	b := brokertest.Embedded(t, embeddedbroker.ACL(func(_, topic string, write bool) bool {
		return topic != "secret/#" && !(write && topic == "readonly")
	}))
	c := brokertest.Connect5(t, b.URL(), "acl")
	require.Equal(t, byte(0x87), c.Subscribe(t, "secret/#", 1))
	require.Equal(t, byte(1), c.Subscribe(t, "readonly", 1))
	require.Equal(t, byte(0x87), c.Publish(t, &paho.Publish{Topic: "readonly", QoS: 1, Payload: []byte("x")}))
	require.Equal(t, byte(0), c.Publish(t, &paho.Publish{Topic: "other", QoS: 1, Payload: []byte("x")}))
}

func TestCONNACKAnnouncesLimits(t *testing.T) {
	b := brokertest.Embedded(t, embeddedbroker.ReceiveMaximum(7), embeddedbroker.MaximumPacketSize(1000),
		embeddedbroker.ServerKeepAlive(3*time.Second))
	ca := brokertest.Connect5(t, b.URL(), "limits").Connack
	require.Equal(t, uint16(7), *ca.Properties.ReceiveMaximum)
	require.Equal(t, uint32(1000), *ca.Properties.MaximumPacketSize)
	require.Equal(t, uint16(3), *ca.Properties.ServerKeepAlive)
}

// waitFor receives from ch until it yields want, failing after a bound.
func waitFor(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	timeout := time.After(brokertest.Timeout)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no event for %s", want)
		}
	}
}

func TestOnSessionExpiredAndOnPing(t *testing.T) {
	expired, pings := make(chan string, 10), make(chan string, 100)
	b := brokertest.Embedded(t,
		embeddedbroker.OnSessionExpired(func(id string) { expired <- id }),
		embeddedbroker.OnPing(func(id string) { pings <- id }),
		embeddedbroker.ServerKeepAlive(time.Second))
	one := uint32(1)
	c, err := brokertest.TryConnect5(b.URL(), brokertest.Options5{Connect: paho.Connect{
		ClientID: "short", Properties: &paho.ConnectProperties{SessionExpiryInterval: &one}}})
	require.NoError(t, err)
	waitFor(t, pings, "short") // paho pings at the server's keep-alive
	require.NoError(t, c.Disconnect(&paho.Disconnect{}))
	waitFor(t, expired, "short")
}

func TestV5OptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opt  embeddedbroker.Option
		want string
	}{
		{embeddedbroker.ReceiveMaximum(0), "ReceiveMaximum(0)"},
		{embeddedbroker.MaximumPacketSize(10), "MaximumPacketSize(10)"},
		{embeddedbroker.ServerKeepAlive(1500 * time.Millisecond), "ServerKeepAlive(1.5s)"},
		{embeddedbroker.SCRAM("", "x"), "SCRAM"},
		{embeddedbroker.ACL(nil), "ACL"},
		{embeddedbroker.OnSessionExpired(nil), "OnSessionExpired"},
		{embeddedbroker.OnPing(nil), "OnPing"},
	} {
		_, err := embeddedbroker.Start(tc.opt)
		require.ErrorContains(t, err, tc.want)
	}
}
