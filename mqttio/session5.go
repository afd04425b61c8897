package mqttio

import (
	"sync/atomic"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// session5 is paho.golang's session state of one MQTT 5 connection, with
// two changes.
//
// Acknowledgements wait for mqttio: paho acknowledges a message once its
// handler has returned, and session5 ignores that; ack5 acknowledges it when
// the bundle that emitted it has committed. Each connection has its own
// session5, so an acknowledgement can only reach the connection its message
// came on, never a later one (paho.golang's known issue 160: an Ack after
// the connection dropped is undefined when the state is shared).
//
// Publishes are accounted for by outbound5, which gets the broker's answers
// to them before paho's state does.
type session5 struct {
	*state.State
	// raw is the connection when it is a bufferedConn, which ack5 writes
	// QoS 1 acknowledgements to itself.
	raw *bufferedConn
	// out is set once the CONNACK has said the broker's Receive Maximum.
	out atomic.Pointer[outbound5]
}

func newSession5() *session5 {
	return &session5{State: state.NewInMemory()}
}

// Ack is paho's automatic acknowledgement, which mqttio defers (see ack5).
func (s *session5) Ack(*packets.Publish) error { return nil }

// PacketReceived gives outbound5 the answers to its publishes, and paho's
// state the rest.
func (s *session5) PacketReceived(cp *packets.ControlPacket, ch chan<- *packets.Publish) error {
	if out := s.out.Load(); out != nil && out.received(cp) {
		return nil
	}
	return s.State.PacketReceived(cp, ch)
}

// ConnectionLost fails the publishes still waiting.
func (s *session5) ConnectionLost(dp *packets.Disconnect) error {
	err := s.State.ConnectionLost(dp)
	if out := s.out.Load(); out != nil {
		out.lose()
	}
	return err
}

// ack5 acknowledges a message on the connection it came on.
type ack5 struct {
	session *session5
	id      uint16
	qos     byte
}

// Ack sends the PUBACK (QoS 1) or PUBREC (QoS 2). After the connection was
// lost nothing is sent (the state has no connection, a bufferedConn refuses
// writes): the broker redelivers the message on the next one.
func (a *ack5) Ack() {
	if c := a.session.raw; c != nil && a.qos == 1 {
		// paho's state keeps nothing of a QoS 1 acknowledgement: it only
		// writes the PUBACK, with more allocations than the 4 bytes of a
		// success without properties.
		c.Lock()
		_, _ = c.Write([]byte{packets.PUBACK << 4, 2, byte(a.id >> 8), byte(a.id)})
		c.Unlock()
		return
	}
	pb := packets.Publish{PacketID: a.id, QoS: a.qos}
	_ = a.session.State.Ack(&pb)
}

// token5 is the token of an MQTT 5 operation.
type token5 struct {
	done chan struct{}
	err  error
}

func newToken5() *token5 { return &token5{done: make(chan struct{})} }

func (t *token5) Done() <-chan struct{} { return t.done }

// Error waits for the operation and returns its error.
func (t *token5) Error() error {
	<-t.done
	return t.err
}

func (t *token5) complete(err error) {
	t.err = err
	close(t.done)
}

// doneToken5 is the token of an operation completed already.
func doneToken5(err error) *token5 {
	t := newToken5()
	t.complete(err)
	return t
}
