package brokertest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// Client5 is an MQTT 5 test client (paho.golang). Its received messages go
// to Messages, acknowledged at once.
type Client5 struct {
	*paho.Client
	Messages Inbox5
	// Connack is the broker's answer to the connection.
	Connack *paho.Connack
}

// Inbox5 buffers the messages an MQTT 5 client receives.
type Inbox5 chan *paho.Publish

// Options5 configure an MQTT 5 test client: its CONNECT packet (client id,
// clean start, properties; Connect5 fills in a 30s keep-alive), TLS for
// ssl:// URLs, and the enhanced authentication handler.
type Options5 struct {
	Connect paho.Connect
	TLS     *tls.Config
	Auth    paho.Auther
}

// Connect5 connects an MQTT 5 client with clean start and client id id,
// failing t if it cannot, and disconnects it when the test ends.
func Connect5(t testing.TB, brokerURL, id string) *Client5 {
	t.Helper()
	return Connect5With(t, brokerURL, Options5{Connect: paho.Connect{ClientID: id, CleanStart: true}})
}

// Connect5With connects an MQTT 5 client configured by o, failing t if it
// cannot, and disconnects it when the test ends.
func Connect5With(t testing.TB, brokerURL string, o Options5) *Client5 {
	t.Helper()
	c, err := TryConnect5(brokerURL, o)
	if err != nil {
		t.Fatalf("brokertest: MQTT 5 connect to %s: %v", brokerURL, err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c
}

// TryConnect5 connects an MQTT 5 client configured by o and returns it, or
// the error with the broker's CONNACK when there was one, for tests that
// expect a connection to be refused. The caller disconnects it.
func TryConnect5(brokerURL string, o Options5) (*Client5, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" {
		tc := tls.Client(conn, o.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	c := &Client5{Messages: make(Inbox5, 10000)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn:        packets.NewThreadSafeConn(conn),
		AuthHandler: o.Auth,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.Messages <- pr.Packet
			return true, nil
		}},
	})
	cp := o.Connect
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	ca, err := c.Connect(ctx, &cp)
	c.Connack = ca
	if err != nil {
		if ca != nil {
			return c, fmt.Errorf("%w (reason code 0x%02X)", err, ca.ReasonCode)
		}
		return nil, err
	}
	return c, nil
}

// Subscribe subscribes to filter at qos and returns the broker's reason
// code (the granted QoS, or a refusal of 0x80 and above), failing t when
// the broker does not answer.
func (c *Client5) Subscribe(t testing.TB, filter string, qos byte) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	sa, err := c.Client.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if sa == nil {
		t.Fatalf("brokertest: subscribing to %s: %v", filter, err)
	}
	return sa.Reasons[0]
}

// Publish publishes p and returns the broker's reason code (0 for QoS 0),
// failing t when the broker does not answer.
func (c *Client5) Publish(t testing.TB, p *paho.Publish) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	pr, err := c.Client.Publish(ctx, p)
	if pr == nil {
		t.Fatalf("brokertest: publishing to %s: %v", p.Topic, err)
	}
	return pr.ReasonCode
}

// Next returns the next n messages, failing t if they do not all arrive
// within Timeout.
func (in Inbox5) Next(t testing.TB, n int) []*paho.Publish {
	t.Helper()
	return next(t, in, n, func(got []*paho.Publish) []string {
		out := make([]string, len(got))
		for i, m := range got {
			out[i] = string(m.Payload)
		}
		return out
	})
}
