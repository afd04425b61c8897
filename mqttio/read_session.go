package mqttio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

// sessions is the per-worker cache of reader sessions, keyed by client id.
var sessions = streamread.NewCache[*session]()

// delivery is a message received from the broker, tagged with the connection
// (epoch) it arrived on: it can only be acknowledged on that connection.
type delivery struct {
	msg      mqtt.Message
	epoch    uint64
	received time.Time
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
	client       mqtt.Client
	epoch        uint64 // incremented per connection
	connected    bool
	lostErr      error
	subscription mqtt.Token // the current connection's SUBSCRIBE, until checked
	attempts     int        // failed connection attempts in a row
	nextTry      time.Time  // earliest time for the next connection attempt
	closed       bool
	// For LocalReaders and the end of a read that never connected.
	everConnected bool
	connectErr    error     // the last failed connection attempt's, until one succeeds
	watermark     time.Time // the watermark at the end of the last bundle

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
	epoch, hadConnection := s.epoch, s.client != nil
	s.mu.Unlock()

	opts, err := s.cfg.clientOptions(s.brokers, s.id)
	if err != nil {
		return false, &permanentError{err}
	}
	opts.SetCleanSession(s.cfg.QoS == 0).
		SetProtocolVersion(4).
		SetAutoAckDisabled(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { s.receive(m, epoch) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { s.lost(epoch, err) })
	client := mqtt.NewClient(opts)
	if err := wait(ctx, client.Connect(), s.cfg.ConnectTimeout+time.Second); err != nil {
		return hadConnection, s.failed(classifyConnectError(s.brokers, s.id, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.epoch != epoch {
		client.Disconnect(0)
		return false, errSessionClosed
	}
	s.client, s.connected, s.lostErr, s.attempts = client, true, nil, 0
	s.everConnected, s.connectErr = true, nil
	// The subscription is not awaited: a persistent session's queued messages
	// arrive before the SUBACK and must be consumed for it to get through.
	s.subscription = client.SubscribeMultiple(s.filters, nil)
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
	if s.subscription == tok {
		s.subscription = nil
	}
	s.mu.Unlock()
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribing to %s as client %q: %w", filterList(s.filters), s.id, err)
	}
	for filter, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code == 0x80 {
			return &permanentError{fmt.Errorf("broker refused the subscription to %q for client %q (not authorised, or shared subscriptions unsupported)", filter, s.id)}
		}
	}
	return nil
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

// receive is paho's message handler: it blocks while the buffer is full.
func (s *session) receive(m mqtt.Message, epoch uint64) {
	d := delivery{msg: m, epoch: epoch, received: time.Now()}
	select {
	case s.queue <- d:
	case <-s.done:
	}
}

// lost is paho's connection-lost handler. The session does not reconnect by
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
		if d.epoch != epoch || d.msg.Qos() == 0 {
			return false
		}
		d.msg.Ack()
		return true
	})
}

// Close disconnects the session, letting the acknowledgements already sent go
// out first. Unacknowledged messages stay with the broker's session.
func (s *session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.connected = true, false
	client := s.client
	close(s.done)
	s.mu.Unlock()
	if client != nil && client.IsConnectionOpen() {
		flush(client, s.cfg.ConnectTimeout)
		client.Disconnect(250)
	}
}

// flush makes sure the broker has processed the acknowledgements sent so
// far: paho's Disconnect can close the socket before PUBACKs queued just
// before it are written (seen with Mosquitto and mochi), and the broker would
// redeliver those messages. Brokers handle a connection's packets in order,
// so the answer to an UNSUBSCRIBE (of a filter never subscribed: a no-op)
// means everything sent before it has been processed.
func flush(client mqtt.Client, timeout time.Duration) {
	client.Unsubscribe("mqttbeam/flush").WaitTimeout(timeout)
}

// wait waits for a paho token, bounded by timeout and ctx.
func wait(ctx context.Context, tok mqtt.Token, timeout time.Duration) error {
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
	names := make([]string, 0, len(filters))
	for f := range filters {
		names = append(names, f)
	}
	return strings.Join(names, ",")
}
