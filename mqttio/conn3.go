package mqttio

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// conn3 is an MQTT 3.1.1 connection through paho.mqtt.golang.
type conn3 struct {
	client  mqtt.Client
	id      string
	present bool // the broker resumed the client id's session
}

// dial3 connects to the first broker that accepts (paho tries them in
// order). paho does not reconnect by itself: mqttio decides when to.
func dial3(ctx context.Context, s *dialSpec) (brokerConn, error) {
	opts := mqtt.NewClientOptions()
	for _, b := range s.brokers {
		opts.AddBroker(b)
	}
	opts.SetClientID(s.clientID).
		SetProtocolVersion(4).
		SetCleanSession(!s.persistent).
		SetKeepAlive(s.keepAlive).
		SetPingTimeout(min(s.keepAlive, 10*time.Second)).
		SetConnectTimeout(s.connectTimeout).
		SetWriteTimeout(s.connectTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { s.onLost(err) })
	if s.username != "" {
		opts.SetUsername(s.username).SetPassword(s.password)
	}
	if s.tls != nil {
		opts.SetTLSConfig(s.tls)
	} else if allPlainTCP(s.brokers) {
		opts.SetCustomOpenConnectionFn(dialBuffered)
	}
	if s.onMessage != nil {
		opts.SetAutoAckDisabled(true).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			msg := Message{Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Retained: m.Retained(), Duplicate: m.Duplicate()}
			var ack acker
			if msg.QoS > 0 {
				ack = m
			}
			s.onMessage(msg, ack)
		})
	}
	client := mqtt.NewClient(opts)
	tok := client.Connect()
	if err := wait(ctx, tok, s.connectTimeout+time.Second); err != nil {
		client.Disconnect(0)
		return nil, classifyConnectError(s.brokers, s.clientID, err)
	}
	return &conn3{client: client, id: s.clientID, present: tok.(*mqtt.ConnectToken).SessionPresent()}, nil
}

func (c *conn3) subscribe(filters map[string]byte) token {
	return &subscription3{Token: c.client.SubscribeMultiple(filters, nil), filters: filters, id: c.id}
}

// subscription3 is a SUBSCRIBE's token whose error names a refused filter.
type subscription3 struct {
	mqtt.Token
	filters map[string]byte
	id      string
}

func (s *subscription3) Error() error {
	if err := s.Token.Error(); err != nil {
		return fmt.Errorf("subscribing to %s as client %q: %w", filterList(s.filters), s.id, err)
	}
	result := s.Token.(*mqtt.SubscribeToken).Result()
	for _, filter := range slices.Sorted(maps.Keys(result)) {
		if result[filter] == 0x80 {
			return &permanentError{fmt.Errorf("broker refused the subscription to %q for client %q (not authorised, or shared subscriptions unsupported)", filter, s.id)}
		}
	}
	return nil
}

func (c *conn3) publish(_ context.Context, topic string, qos byte, retain bool, p *Publication) token {
	return c.client.Publish(topic, qos, retain, p.Payload)
}

// flush makes sure the broker has processed the acknowledgements sent so
// far: paho's Disconnect can close the socket before PUBACKs queued just
// before it are written (seen with Mosquitto and mochi), and the broker would
// redeliver those messages. Brokers handle a connection's packets in order,
// so the answer to an UNSUBSCRIBE (of a filter never subscribed: a no-op)
// means everything sent before it has been processed.
func (c *conn3) flush(timeout time.Duration) {
	if c.client.IsConnectionOpen() {
		c.client.Unsubscribe(flushFilter).WaitTimeout(timeout)
	}
}

// flushFilter is the filter flush unsubscribes from.
const flushFilter = "mqttbeam/flush"

func (c *conn3) close() { c.client.Disconnect(250) }

// limits are what MQTT 3.1.1 brokers announce: whether they resumed a
// session, nothing else.
func (c *conn3) limits() connLimits { return connLimits{maxQoS: 2, sessionPresent: c.present} }

// wait waits for a token, bounded by timeout and ctx.
func wait(ctx context.Context, tok token, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-timer.C:
		return fmt.Errorf("no answer from the broker within %v", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func filterList(filters map[string]byte) string {
	return strings.Join(slices.Sorted(maps.Keys(filters)), ",")
}
