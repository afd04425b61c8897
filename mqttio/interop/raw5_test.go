package interop

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/require"
)

// raw5 is a bare MQTT 5 connection, for the checks that look at what a
// broker sends an MQTT 5 client: its CONNACK, and the QoS 1 messages it
// sends a client that acknowledges none. (paho.golang acknowledges on its
// own.)
type raw5 struct {
	conn    net.Conn
	connack *packets.Connack
	// in gets the PUBLISH packets the broker sends, subacks its SUBACKs;
	// closed is closed when the broker has closed the connection.
	in      chan *packets.Publish
	subacks chan *packets.Suback
	closed  chan struct{}
	nextID  uint16
}

// dial5 connects to url as tg's user with client id clientID, a clean
// start and receiveMaximum (0: none announced, 65535 for the broker), and
// closes the connection when the test ends.
func dial5(t *testing.T, tg *target, url, clientID string, receiveMaximum uint16) *raw5 {
	t.Helper()
	conn := dialTCP(t, url)
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ClientID, c.CleanStart, c.KeepAlive = clientID, true, 60
	c.Username, c.UsernameFlag, c.Password, c.PasswordFlag = tg.user, true, []byte(tg.password), true
	if receiveMaximum > 0 {
		c.Properties.ReceiveMaximum = &receiveMaximum
	}
	_, err := cp.WriteTo(conn)
	require.NoError(t, err)
	ack, err := packets.ReadPacket(conn)
	require.NoError(t, err, "the broker's CONNACK")
	connack, ok := ack.Content.(*packets.Connack)
	require.True(t, ok, "the broker answered CONNECT with %s", ack.PacketType())
	require.Less(t, connack.ReasonCode, byte(0x80), "CONNACK: %s", connack.Reason())
	r := &raw5{conn: conn, connack: connack, in: make(chan *packets.Publish, 1000),
		subacks: make(chan *packets.Suback, 1), closed: make(chan struct{})}
	go r.receive()
	return r
}

// dialTCP opens a TCP connection to the host of url, closed when the test
// ends; every read and write on it has a deadline.
func dialTCP(t *testing.T, brokerURL string) net.Conn {
	t.Helper()
	u, err := url.Parse(brokerURL)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, timeout)
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(2*timeout)))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// receive reads what the broker sends until the connection ends.
func (r *raw5) receive() {
	defer close(r.closed)
	for {
		p, err := packets.ReadPacket(r.conn)
		if err != nil {
			return
		}
		switch c := p.Content.(type) {
		case *packets.Publish:
			r.in <- c
		case *packets.Suback:
			r.subacks <- c
		}
	}
}

// receiveMaximum is the Receive Maximum of the broker's CONNACK (65535 when
// it announces none).
func (r *raw5) receiveMaximum() int {
	if p := r.connack.Properties; p != nil && p.ReceiveMaximum != nil {
		return int(*p.ReceiveMaximum)
	}
	return 65535
}

// sharedAvailable is the Shared Subscription Available of the broker's
// CONNACK (true when it does not say).
func (r *raw5) sharedAvailable() bool {
	p := r.connack.Properties
	return p == nil || p.SharedSubAvailable == nil || *p.SharedSubAvailable == 1
}

// subscribe subscribes to filter at qos and returns the SUBACK's reason
// code, or an error when the broker closed the connection instead.
func (r *raw5) subscribe(t *testing.T, filter string, qos byte) (byte, error) {
	t.Helper()
	r.nextID++
	cp := packets.NewControlPacket(packets.SUBSCRIBE)
	s := cp.Content.(*packets.Subscribe)
	s.PacketID, s.Subscriptions = r.nextID, []packets.SubOptions{{Topic: filter, QoS: qos}}
	_, err := cp.WriteTo(r.conn)
	require.NoError(t, err)
	select {
	case ack := <-r.subacks:
		return ack.Reasons[0], nil
	case <-r.closed:
		return 0, fmt.Errorf("the broker closed the connection on SUBSCRIBE %s", filter)
	case <-time.After(timeout):
		require.FailNow(t, "no SUBACK", "for %s", filter)
		return 0, nil
	}
}
