package mqttio

import (
	"context"
	"crypto/tls"
	"time"
)

// brokerConn is one connection to the broker, made by the client of the
// protocol the options choose: paho.mqtt.golang for MQTT 3.1.1 (conn3.go),
// paho.golang for MQTT 5 (conn5.go). Readers' sessions and writers use it
// only, so that their logic is written once for both protocols. Its methods
// are safe for concurrent use.
type brokerConn interface {
	// subscribe sends a SUBSCRIBE for filters (filter to QoS) without
	// waiting for the answer: the queued messages of a persistent session
	// arrive before the SUBACK and must be consumed for it to get through.
	// The token's error names the filter the broker refused and why.
	subscribe(filters map[string]byte) token
	// publish sends p to topic. Its token completes when the broker has
	// acknowledged it (QoS 1 and 2) or it was written (QoS 0); a broker's
	// MQTT 5 refusal is a *refusedError. ctx bounds the wait for a slot
	// when the broker's receive maximum is reached (MQTT 5).
	publish(ctx context.Context, topic string, qos byte, retain bool, p *Publication) token
	// flush waits, at most timeout, until the broker has processed what was
	// sent before, acknowledgements included.
	flush(timeout time.Duration)
	// close disconnects. A persistent session stays with the broker.
	close()
	// limits are what the broker's CONNACK said about the connection.
	limits() connLimits
}

// connLimits are what a broker announces in its CONNACK. MQTT 3.1.1 has none
// of them: a connection's limits are then the zero value.
type connLimits struct {
	// receiveMaximum is how many QoS 1 and 2 publishes the broker accepts
	// unacknowledged from the client (Mosquitto and EMQX announce their
	// max_inflight_messages / max_inflight, the same limit they hold
	// subscribers to).
	receiveMaximum uint16
	// maxPacketSize is the largest packet the broker accepts; 0: no limit.
	maxPacketSize uint32
	// maxQoS is the highest QoS the broker supports.
	maxQoS byte
	// noRetain is set when the broker does not support retained messages.
	noRetain bool
	// keepAlive is the keep-alive the broker assigned, if it did.
	keepAlive time.Duration
	// sessionPresent is set when the broker resumed a session it kept for
	// the client id (both versions say so).
	sessionPresent bool
}

// token is the outcome of an asynchronous operation: Done is closed when it
// is complete, and then Error tells how it went. paho.mqtt.golang's tokens
// are tokens.
type token interface {
	Done() <-chan struct{}
	Error() error
}

// acker acknowledges a received QoS 1 or 2 message on the connection it
// arrived on (paho.mqtt.golang's messages are ackers).
type acker interface{ Ack() }

// dialSpec is what dialing needs: the options resolved for one client (the
// secrets looked up, the TLS configuration built) and its callbacks.
type dialSpec struct {
	brokers        []string
	clientID       string
	username       string
	password       string
	tls            *tls.Config // nil when no broker URL uses TLS
	keepAlive      time.Duration
	connectTimeout time.Duration
	// persistent keeps the broker's session: clean session off (3.1.1),
	// clean start off with sessionExpiry (5).
	persistent    bool
	sessionExpiry uint32 // seconds
	// receiveMaximum is the reader's inflight window, announced to MQTT 5
	// brokers in CONNECT; 0: none (writers).
	receiveMaximum uint16
	// publishWait bounds a writer's wait for a slot of the broker's receive
	// maximum (MQTT 5); 0: none.
	publishWait time.Duration
	// auth runs MQTT 5 enhanced authentication; nil: none.
	auth *authSpec
	// onMessage receives the messages of the subscriptions, with their
	// acker (nil for QoS 0); it may block, which stops reading the
	// connection. nil for writers.
	onMessage func(m Message, ack acker)
	// onLost is told why the connection was lost.
	onLost func(err error)
}
