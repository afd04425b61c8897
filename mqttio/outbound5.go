package mqttio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// outbound5 is an MQTT 5 connection's own account of the QoS 1 and 2
// publishes it sends: their packet identifiers, a slot of the broker's
// Receive Maximum each until the broker has acknowledged it, and the tokens
// to complete. paho's state would keep the same account at the cost of a
// goroutine, two contexts and a copy of the packet per publish, which made
// an MQTT 5 writer less than half as fast as an MQTT 3.1.1 one.
//
// Its packet identifiers count down from 65535, paho's state's (for
// SUBSCRIBE and UNSUBSCRIBE) up from 1; writers, the only publishers, never
// subscribe, and a reader's connection publishes nothing.
type outbound5 struct {
	conn  net.Conn      // to write PUBRELs to (a sync.Locker)
	slots chan struct{} // one per publish in flight, up to the Receive Maximum
	dead  chan struct{} // closed when the connection is lost

	mu      sync.Mutex
	pending map[uint16]*token5 // by packet identifier
	next    uint16             // the last identifier given out
	lost    error
}

func newOutbound5(conn net.Conn, receiveMaximum uint16) *outbound5 {
	return &outbound5{conn: conn, slots: make(chan struct{}, max(receiveMaximum, 1)), dead: make(chan struct{}),
		pending: map[uint16]*token5{}}
}

// start takes a slot, waiting at most wait (if positive, and while ctx
// lasts) for one,
// and a packet identifier for a publish whose token is tok.
func (o *outbound5) start(ctx context.Context, wait time.Duration, tok *token5) (uint16, error) {
	select {
	case o.slots <- struct{}{}:
	default:
		var expired <-chan time.Time // never, without a wait
		if wait > 0 {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			expired = timer.C
		}
		select {
		case o.slots <- struct{}{}:
		case <-expired:
			return 0, fmt.Errorf("the broker's receive maximum (%d publishes in flight) was still reached after %v", cap(o.slots), wait)
		case <-o.dead:
			return 0, errConnectionLost
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lost != nil {
		<-o.slots
		return 0, o.lost
	}
	for {
		o.next--
		if o.next == 0 {
			o.next = 65535
		}
		if o.pending[o.next] == nil {
			break // there is one: at most cap(slots) < 65535 are pending
		}
	}
	o.pending[o.next] = tok
	return o.next, nil
}

// received handles the broker's answer to a publish: PUBACK, PUBREC or
// PUBCOMP. It reports whether the packet was one of the account's.
func (o *outbound5) received(cp *packets.ControlPacket) bool {
	var (
		id    uint16
		code  byte
		props *packets.Properties
	)
	switch p := cp.Content.(type) {
	case *packets.Puback:
		id, code, props = p.PacketID, p.ReasonCode, p.Properties
	case *packets.Pubcomp:
		id, code, props = p.PacketID, p.ReasonCode, p.Properties
	case *packets.Pubrec:
		id, code, props = p.PacketID, p.ReasonCode, p.Properties
		if code < 0x80 && o.owns(id) {
			// Received: release it, and wait for the PUBCOMP.
			_, _ = (&packets.Pubrel{PacketID: id}).WriteTo(o.conn)
			return true
		}
	default:
		return false
	}
	o.mu.Lock()
	tok := o.pending[id]
	delete(o.pending, id)
	o.mu.Unlock()
	if tok == nil {
		return false
	}
	<-o.slots
	var err error
	if code >= 0x80 {
		refused := &refusedError{code: code}
		if props != nil {
			refused.reasonString = props.ReasonString
		}
		err = refused
	}
	tok.complete(err)
	return true
}

func (o *outbound5) owns(id uint16) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending[id] != nil
}

// lose fails the publishes still waiting: the connection is gone.
func (o *outbound5) lose() {
	o.mu.Lock()
	pending := o.pending
	if o.lost == nil {
		o.lost = errConnectionLost
		close(o.dead)
	}
	o.pending = map[uint16]*token5{}
	o.mu.Unlock()
	for _, tok := range pending {
		tok.complete(errConnectionLost)
	}
}

var errConnectionLost = errors.New("the connection was lost before the broker acknowledged the publish")
