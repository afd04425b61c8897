package mqttio

import (
	"context"
	"errors"
	"fmt"

	"sync"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

// sessions is the per-worker cache of reader sessions, keyed by client id.
var sessions = streamread.NewCache[*session]()

// delivery is a message received from the broker, tagged with the connection
// (epoch) it arrived on: it can only be acknowledged on that connection.
type delivery struct {
	msg   Message // with its ReceivedAt
	ack   acker   // acknowledges it on its connection; nil for QoS 0
	epoch uint64
}

// session is one reader's connection to the broker and the messages it has
// received but not yet had acknowledged. Only one bundle uses a session at a
// time (acquire/release).
type session struct {
	lease   streamread.Lease // spec: brokers, filters and settings
	id      string
	brokers []string
	filters map[string]byte
	cfg     *readConfig

	// Fed by the paho message handler; bounded, so a full buffer stops the
	// connection's reader and leaves the backlog on the broker.
	queue chan delivery
	done  chan struct{} // closed when the session is closed

	mu           sync.Mutex
	conn         brokerConn
	epoch        uint64 // incremented per connection
	connected    bool
	lostErr      error
	subscription token     // the current connection's SUBSCRIBE, until checked
	attempts     int       // failed connection attempts in a row
	nextTry      time.Time // earliest time for the next connection attempt
	closed       bool
	// For LocalReaders and the end of a read that never connected.
	everConnected bool
	connectErr    error     // the last failed connection attempt's, until one succeeds
	watermark     time.Time // the watermark at the end of the last bundle
	// window is the inflight window of the current connection: the
	// broker's limit on the QoS 1 and 2 messages it sends unacknowledged.
	window int

	log   streamread.Log[delivery] // emitted, not yet acknowledged
	timer *time.Timer              // next's wait
}

// acquire returns the session of reader clientID, locked for the calling
// bundle (see streamread.Cache.Acquire), creating it with its log numbered
// from start when there is none.
func acquire(clientID, spec string, start int64, brokers []string, filters map[string]byte, cfg *readConfig) *session {
	open := func() (*session, error) { return newSession(clientID, brokers, filters, cfg), nil }
	s, _ := sessions.Acquire(clientID, spec, start, open)
	return s
}

// release gives the session up until the next bundle; it closes when idle
// for SessionIdle.
func release(s *session) { sessions.Release(s, s.cfg.SessionIdle) }

// backlog returns the number of messages waiting on this worker for the
// reader beyond offset claimed, or 0 when the worker has no session for it.
func backlog(clientID string, claimed int64) int64 {
	if s, ok := sessions.Get(clientID); ok {
		return s.backlog(claimed)
	}
	return 0
}

// Lease is the session's part that the cache manages.
func (s *session) Lease() *streamread.Lease { return &s.lease }

// Offsets is the session's log, for the cache.
func (s *session) Offsets() streamread.Offsets { return &s.log }

func newSession(id string, brokers []string, filters map[string]byte, cfg *readConfig) *session {
	return &session{
		id:      id,
		brokers: brokers,
		filters: filters,
		cfg:     cfg,
		queue:   make(chan delivery, cfg.MaxBuffered),
		done:    make(chan struct{}),
	}
}

// backlog counts the messages received or logged beyond offset claimed. It
// is safe to call while a bundle uses the session.
func (s *session) backlog(claimed int64) int64 {
	return s.log.Backlog(claimed) + int64(len(s.queue))
}

// ensureConnected connects the session if it is not connected. It returns
// errRetryLater while a failed attempt's backoff runs, and a permanentError
// for failures retrying cannot fix. reconnected is true when an earlier
// connection of this session was lost.
func (s *session) ensureConnected(ctx context.Context) (reconnected bool, err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, errSessionClosed
	}
	if s.connected {
		s.mu.Unlock()
		return false, nil
	}
	if wait := time.Until(s.nextTry); wait > 0 {
		s.mu.Unlock()
		return false, errRetryLater
	}
	s.epoch++
	epoch, hadConnection := s.epoch, s.conn != nil
	s.mu.Unlock()

	spec, err := s.cfg.dialSpec(s.brokers, s.id)
	if err != nil {
		return false, &permanentError{err}
	}
	spec.persistent = s.cfg.QoS > 0
	spec.sessionExpiry = s.cfg.sessionExpiry()
	spec.receiveMaximum = s.cfg.receiveMaximum()
	spec.onMessage = func(m Message, ack acker) { s.receive(m, ack, epoch) }
	spec.onLost = func(err error) { s.lost(epoch, err) }
	conn, err := s.cfg.dial(ctx, &spec)
	if err != nil {
		return hadConnection, s.failed(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.epoch != epoch {
		conn.close()
		return false, errSessionClosed
	}
	s.conn, s.connected, s.lostErr, s.attempts = conn, true, nil, 0
	s.everConnected, s.connectErr = true, nil
	s.window = s.cfg.window(conn.limits())
	// The subscription is not awaited: a persistent session's queued messages
	// arrive before the SUBACK and must be consumed for it to get through.
	s.subscription = conn.subscribe(s.filters)
	return hadConnection, nil
}

// subscribed checks the outcome of the current connection's subscription
// once the broker has answered: a refused filter is a permanent error.
func (s *session) subscribed() error {
	s.mu.Lock()
	tok := s.subscription
	s.mu.Unlock()
	if tok == nil {
		return nil
	}
	select {
	case <-tok.Done():
	default:
		return nil
	}
	s.mu.Lock()
	current := s.subscription == tok
	if current {
		s.subscription = nil
	}
	connected := s.connected
	s.mu.Unlock()
	err := tok.Error()
	if err != nil && !isPermanent(err) && (!current || !connected) {
		return nil // the connection was lost: the next one subscribes again
	}
	return err
}

// failed records a failed connection attempt and schedules the next one with
// exponential backoff (100ms doubling up to 30s).
func (s *session) failed(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	s.connectErr = err
	backoff := min(100*time.Millisecond<<min(s.attempts-1, 9), 30*time.Second)
	s.nextTry = time.Now().Add(backoff)
	return err
}

var (
	errRetryLater    = errors.New("mqttio: connection attempt backing off")
	errSessionClosed = errors.New("mqttio: session closed")
)

// receive is the connection's message handler: it blocks while the buffer
// is full.
func (s *session) receive(m Message, ack acker, epoch uint64) {
	m.ReceivedAt = time.Now()
	d := delivery{msg: m, ack: ack, epoch: epoch}
	select {
	case s.queue <- d:
	case <-s.done:
	}
}

// lost is the connection-lost handler. The session does not reconnect by
// itself: the next bundle that uses it does. A connection taken over by a
// reader on another worker (same client id) thus stays closed.
func (s *session) lost(epoch uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch == epoch {
		s.connected, s.lostErr = false, err
	}
}

// next returns the next message received on the current connection, waiting
// at most wait for one. Messages from an earlier connection are dropped: the
// broker redelivers them on the new one. Only the bundle holding the session
// calls it.
func (s *session) next(ctx context.Context, wait time.Duration) (delivery, bool) {
	armed := false
	for {
		var d delivery
		select {
		case d = <-s.queue:
		default:
			if wait <= 0 {
				return d, false
			}
			if !armed {
				// One timer per session: a timer per call showed up in profiles.
				if s.timer == nil {
					s.timer = time.NewTimer(wait)
				} else {
					s.timer.Reset(wait)
				}
				armed = true
			}
			select {
			case d = <-s.queue:
			case <-s.timer.C:
				return d, false
			case <-s.done:
				return d, false
			case <-ctx.Done():
				return d, false
			}
		}
		if d.epoch == s.currentEpoch() {
			return d, true
		}
	}
}

func (s *session) currentEpoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// isConnected reports whether the current connection is up; when it is not,
// the error that ended it.
func (s *session) isConnected() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected, s.lostErr
}

// neverConnected returns the error of a reader that ends without ever
// having connected (a typo in the broker URL, a broker that is down): a read
// that got nothing because it reached nothing is a failure, not an empty
// success.
func (s *session) neverConnected() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.everConnected || s.connectErr == nil {
		return nil // connected, or stopped before its first attempt
	}
	return fmt.Errorf("mqttio.Read: reader %s never connected (last error: %v): check the broker URLs and that the broker is up",
		s.id, s.connectErr)
}

// state is the session's ReaderState.
func (s *session) state() ReaderState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ReaderState{ClientID: s.id, Connected: s.connected, Watermark: s.watermark}
	if !s.connected {
		st.Err = s.connectErr
		if st.Err == nil {
			st.Err = s.lostErr
		}
	}
	return st
}

// setWatermark records the reader's watermark at the end of a bundle.
func (s *session) setWatermark(t time.Time) {
	s.mu.Lock()
	s.watermark = t
	s.mu.Unlock()
}

// ackBelow acknowledges the logged messages below offset off (their bundle
// committed) and drops them from the log. Messages from an earlier connection
// are dropped without an ack: the broker redelivers them on the current one.
func (s *session) ackBelow(off int64) (acked int) {
	epoch := s.currentEpoch()
	return s.log.AckBelow(off, func(d delivery) bool {
		if d.epoch != epoch || d.ack == nil {
			return false
		}
		d.ack.Ack()
		return true
	})
}

// Close disconnects the session, letting the acknowledgements already sent go
// out first (see brokerConn.flush). Unacknowledged messages stay with the
// broker's session.
func (s *session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.connected = true, false
	conn := s.conn
	close(s.done)
	s.mu.Unlock()
	if conn != nil {
		conn.flush(s.cfg.ConnectTimeout)
		conn.close()
	}
}
