package mqttio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// conn5 is an MQTT 5 connection through paho.golang's low-level client (not
// autopaho: mqttio reconnects itself, when a bundle needs the connection,
// and a reader whose client id was taken over must stay closed).
type conn5 struct {
	spec    *dialSpec
	broker  string
	raw     net.Conn // paho writes to it too: a sync.Locker, see openConn5
	client  *paho.Client
	session *session5
	limit   connLimits
}

// dial5 connects to the first broker that accepts, trying them in order.
// A refusal that retrying cannot fix (bad credentials, say) ends the
// attempt at once: the brokers of one cluster would all refuse.
func dial5(ctx context.Context, s *dialSpec) (brokerConn, error) {
	var err error
	for _, b := range s.brokers {
		var c *conn5
		if c, err = dialOne5(ctx, s, b); err == nil {
			return c, nil
		}
		if isPermanent(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func dialOne5(ctx context.Context, s *dialSpec, broker string) (*conn5, error) {
	ctx, cancel := context.WithTimeout(ctx, s.connectTimeout)
	defer cancel()
	where := []string{broker}
	raw, err := openConn5(ctx, broker, s)
	if err != nil {
		return nil, classifyConnectError(where, s.clientID, err)
	}
	c := &conn5{spec: s, broker: broker, raw: raw, session: newSession5()}
	c.session.raw, _ = raw.(*bufferedConn)
	cfg := paho.ClientConfig{
		ClientID:      s.clientID,
		Conn:          raw,
		Session:       c.session,
		PacketTimeout: s.connectTimeout,
		OnClientError: s.onLost,
		OnServerDisconnect: func(d *paho.Disconnect) {
			var reason string
			if d.Properties != nil {
				reason = d.Properties.ReasonString
			}
			s.onLost(fmt.Errorf("the broker closed the connection: %s", reasonText(d.ReasonCode, reason)))
		},
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){c.received},
	}
	var auth *auther
	if s.auth != nil {
		auth = s.auth.start(raw)
		cfg.AuthHandler = auth
	}
	c.client = paho.NewClient(cfg)
	cp, err := s.connect5(ctx, auth)
	if err != nil {
		raw.Close()
		return nil, &permanentError{err}
	}
	ca, err := c.client.Connect(ctx, cp)
	if err != nil {
		if bc, ok := raw.(*bufferedConn); ok && isConnack3(bc.head()) {
			return nil, &permanentError{fmt.Errorf("connecting to %s as client %q: the broker answered in MQTT 3.1.1 (return code %d): it does not speak MQTT 5; use ProtocolVersion(3)",
				broker, s.clientID, bc.head()[3])}
		}
		return nil, connectError5(where, s.clientID, ca, auth, err)
	}
	if auth != nil {
		if err := auth.final(ctx, ca); err != nil {
			c.close()
			return nil, &permanentError{fmt.Errorf("connecting to %s as client %q: %w", broker, s.clientID, err)}
		}
	}
	c.limit = limits5(ca, s.keepAlive)
	c.session.out.Store(newOutbound5(raw, c.limit.receiveMaximum))
	return c, nil
}

// openConn5 opens the network connection to broker. TCP and TLS
// connections go through a bufferedConn, as for MQTT 3.1.1: paho.golang
// reads a packet in several small reads and writes it in several writes.
// Both are sync.Lockers, which paho.golang holds while writing a packet so
// that packets written at the same time do not interleave.
func openConn5(ctx context.Context, broker string, s *dialSpec) (net.Conn, error) {
	u, err := url.Parse(broker)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "ws", "wss":
		var tc *tls.Config
		if u.Scheme == "wss" {
			tc = s.tls
		}
		conn, err := mqtt.NewWebsocket(u.String(), tc, s.connectTimeout, nil, nil)
		if err != nil {
			return nil, err
		}
		return packets.NewThreadSafeConn(conn), nil
	}
	var conn net.Conn
	if schemes[u.Scheme] {
		d := tls.Dialer{Config: s.tls}
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	return newBufferedConn(conn, s.connectTimeout), nil
}

// connect5 is the CONNECT packet of the spec.
func (s *dialSpec) connect5(ctx context.Context, auth *auther) (*paho.Connect, error) {
	cp := &paho.Connect{
		ClientID:   s.clientID,
		KeepAlive:  uint16(min(s.keepAlive/time.Second, 65535)),
		CleanStart: !s.persistent,
		Properties: &paho.ConnectProperties{RequestProblemInfo: true},
	}
	if s.persistent {
		cp.Properties.SessionExpiryInterval = &s.sessionExpiry
	}
	if s.receiveMaximum > 0 {
		cp.Properties.ReceiveMaximum = &s.receiveMaximum
	}
	if s.username != "" {
		cp.Username, cp.UsernameFlag = s.username, true
	}
	if auth == nil {
		if s.password != "" {
			cp.Password, cp.PasswordFlag = []byte(s.password), true
		}
		return cp, nil
	}
	// With enhanced authentication, the password is the step function's
	// secret: it does not travel in the CONNECT.
	data, err := auth.first(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting as client %q: %w", s.clientID, err)
	}
	cp.Properties.AuthMethod, cp.Properties.AuthData = auth.x.Method, data
	return cp, nil
}

// isConnack3 reports whether head starts an MQTT 3.1.1 CONNACK: an MQTT 5
// CONNACK always has properties, so its remaining length is at least 3.
func isConnack3(head []byte) bool {
	return len(head) == 4 && head[0] == 0x20 && head[1] == 2
}

// connectError5 says why a connection attempt failed and whether retrying
// can help: a CONNACK's reason code, a failed authentication step, or the
// network and TLS errors of MQTT 3.1.1.
func connectError5(brokers []string, clientID string, ca *paho.Connack, auth *auther, err error) error {
	where := fmt.Sprintf("connecting to %s as client %q", strings.Join(brokers, ","), clientID)
	if auth != nil && auth.err != nil {
		return &permanentError{fmt.Errorf("%s: enhanced authentication (%s): %w", where, auth.x.Method, auth.err)}
	}
	if ca == nil || ca.ReasonCode < 0x80 {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// Brokers that do not speak MQTT 5 may close the connection.
			return fmt.Errorf("%s: the broker closed the connection (if it does not speak MQTT 5, use ProtocolVersion(3)): %w", where, err)
		}
		return classifyConnectError(brokers, clientID, err)
	}
	var reason, ref string
	if p := ca.Properties; p != nil {
		reason, ref = p.ReasonString, p.ServerReference
	}
	msg := fmt.Sprintf("%s: broker refused the connection: %s", where, reasonText(ca.ReasonCode, reason))
	switch ca.ReasonCode {
	case 0x84:
		return &permanentError{errors.New(msg + "; use ProtocolVersion(3) for an MQTT 3.1.1 broker")}
	case 0x86:
		return &permanentError{errors.New(msg + "; check the credentials")}
	case 0x87: // Mosquitto answers a bad password so
		return &permanentError{errors.New(msg + ": a bad user name or password, or the user may not connect; check the credentials")}
	case 0x8C:
		return &permanentError{errors.New(msg + "; the broker does not offer this authentication method (see Auth)")}
	case 0x81, 0x82, 0x85, 0x8A, 0x90, 0x95, 0x99, 0x9A, 0x9B:
		return &permanentError{errors.New(msg)}
	case 0x9C, 0x9D:
		if ref != "" {
			msg += "; it names " + ref
		}
	}
	return errors.New(msg) // unavailable, busy, quota, rate: try again
}

// limits5 reads the limits of a CONNACK.
func limits5(ca *paho.Connack, keepAlive time.Duration) connLimits {
	l := connLimits{receiveMaximum: 65535, maxQoS: 2, keepAlive: keepAlive, sessionPresent: ca.SessionPresent}
	p := ca.Properties
	if p == nil {
		return l
	}
	if p.ReceiveMaximum != nil {
		l.receiveMaximum = *p.ReceiveMaximum
	}
	if p.MaximumPacketSize != nil {
		l.maxPacketSize = *p.MaximumPacketSize
	}
	if p.MaximumQoS != nil {
		l.maxQoS = *p.MaximumQoS
	}
	if p.ServerKeepAlive != nil {
		l.keepAlive = time.Duration(*p.ServerKeepAlive) * time.Second
	}
	l.noRetain = !p.RetainAvailable
	return l
}

// received is paho's handler of the subscriptions' messages.
func (c *conn5) received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	m := Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retained: p.Retain, Duplicate: p.Duplicate()}
	if props := p.Properties; props != nil {
		m.ContentType, m.ResponseTopic, m.CorrelationData = props.ContentType, props.ResponseTopic, props.CorrelationData
		m.PayloadUTF8 = props.PayloadFormat != nil && *props.PayloadFormat == 1
		if props.MessageExpiry != nil {
			m.MessageExpiry = time.Duration(*props.MessageExpiry) * time.Second
		}
		if len(props.User) > 0 {
			m.UserProperties = make(UserProperties, len(props.User))
			for i, u := range props.User {
				m.UserProperties[i] = UserProperty{Name: u.Key, Value: u.Value}
			}
		}
	}
	if c.spec.onMessage == nil {
		return true, nil
	}
	var ack acker
	if m.QoS > 0 {
		ack = &ack5{session: c.session, id: p.PacketID, qos: p.QoS}
	}
	c.spec.onMessage(m, ack)
	return true, nil
}

func (c *conn5) subscribe(filters map[string]byte) token {
	names := slices.Sorted(maps.Keys(filters))
	sub := &paho.Subscribe{Subscriptions: make([]paho.SubscribeOptions, len(names))}
	for i, f := range names {
		sub.Subscriptions[i] = paho.SubscribeOptions{Topic: f, QoS: filters[f]}
	}
	tok := newToken5()
	go func() { // paho waits for the SUBACK, which may follow a backlog
		ctx, cancel := context.WithTimeout(context.Background(), 10*c.spec.connectTimeout)
		defer cancel()
		sa, err := c.client.Subscribe(ctx, sub)
		tok.complete(c.subscribed(names, sa, err))
	}()
	return tok
}

// subscribed is the error of a SUBSCRIBE: the first filter the broker
// refused, with its reason, or what kept it from answering.
func (c *conn5) subscribed(filters []string, sa *paho.Suback, err error) error {
	id := c.spec.clientID
	if sa != nil {
		for i, code := range sa.Reasons {
			if code >= 0x80 && i < len(filters) {
				var reason string
				if sa.Properties != nil {
					reason = sa.Properties.ReasonString
				}
				return &permanentError{fmt.Errorf("broker refused the subscription to %q for client %q: %s", filters[i], id, reasonText(code, reason))}
			}
		}
		return nil
	}
	if errors.Is(err, paho.ErrInvalidArguments) { // what the CONNACK said the broker cannot do
		return &permanentError{fmt.Errorf("subscribing to %s as client %q: %w", strings.Join(filters, ","), id, err)}
	}
	return fmt.Errorf("subscribing to %s as client %q: %w", strings.Join(filters, ","), id, err)
}

func (c *conn5) publish(ctx context.Context, topic string, qos byte, retain bool, p *Publication) token {
	pb := &packets.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: p.Payload, Properties: publishProperties(p)}
	if max := c.limit.maxPacketSize; max > 0 {
		if n := packetSize(pb); n > int(max) {
			return doneToken5(&refusedError{code: 0x95, unsent: true,
				reasonString: fmt.Sprintf("the PUBLISH would be %d bytes, the broker's maximum packet size is %d", n, max)})
		}
	}
	if qos == 0 {
		_, err := pb.WriteTo(c.raw)
		return doneToken5(err)
	}
	// A packet identifier and a slot of the broker's receive maximum,
	// waiting while none is free, at most publishWait.
	tok := newToken5()
	id, err := c.session.out.Load().start(ctx, c.spec.publishWait, tok)
	if err != nil {
		tok.complete(err)
		return tok
	}
	pb.PacketID = id
	_, _ = pb.WriteTo(c.raw) // a failed write loses the connection, which fails the token
	return tok
}

// packetSize is the size of pb on the wire.
func packetSize(pb *packets.Publish) int {
	n := 0
	for _, b := range pb.Buffers() {
		n += len(b)
	}
	header := 2 // the type byte and a one-byte remaining length
	for rest := n >> 7; rest > 0; rest >>= 7 {
		header++
	}
	return header + n
}

// publishProperties are the MQTT 5 properties of p, nil when it has none.
func publishProperties(p *Publication) *packets.Properties {
	if len(p.UserProperties) == 0 && p.ContentType == "" && p.ResponseTopic == "" && p.CorrelationData == nil &&
		p.MessageExpiry <= 0 && !p.PayloadUTF8 {
		return nil
	}
	props := &packets.Properties{ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData}
	if p.MessageExpiry > 0 {
		s := uint32(min((p.MessageExpiry+time.Second-1)/time.Second, 1<<32-1))
		props.MessageExpiry = &s
	}
	if p.PayloadUTF8 {
		one := byte(1)
		props.PayloadFormat = &one
	}
	for _, u := range p.UserProperties {
		props.User = append(props.User, packets.User{Key: u.Name, Value: u.Value})
	}
	return props
}

// flush waits for the answer to an UNSUBSCRIBE, as for MQTT 3.1.1 (see
// conn3.flush).
func (c *conn5) flush(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, _ = c.client.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{flushFilter}})
}

// close disconnects (reason 0: the session stays for its expiry interval)
// and releases the session state.
func (c *conn5) close() {
	_ = c.client.Disconnect(&paho.Disconnect{ReasonCode: 0})
	_ = c.session.Close()
}

func (c *conn5) limits() connLimits { return c.limit }
