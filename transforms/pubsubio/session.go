package pubsubio

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
)

// sessions is the per-worker cache of reader sessions, keyed by reader id.
// It is the one piece of global state of Read: Beam creates DoFn instances
// freely, but a reader's streaming pull and the messages it has emitted but
// not yet acknowledged must outlive the bundles and DoFn instances that use
// them.
var sessions = sessionCache{m: map[string]*session{}}

type sessionCache struct {
	mu sync.Mutex
	m  map[string]*session
}

// session is one reader's streaming pull (the client library's Receive,
// which also extends the ack deadlines of the messages it holds) and the
// messages it has received but not yet had acknowledged. Only one bundle
// uses a session at a time (acquire/release).
type session struct {
	id   string
	spec string // subscription and settings: a reader id reused with another spec gets a new session
	cfg  *config

	busy sync.Mutex // held by the bundle using the session

	// Fed by Receive's callback; bounded, so a full buffer holds Receive
	// back and leaves the backlog in the subscription.
	queue    chan *pubsub.Message
	done     chan struct{} // closed when the session is closed
	cancel   context.CancelFunc
	client   *pubsub.Client
	received chan struct{} // closed when Receive has returned

	mu        sync.Mutex
	err       error // Receive's error, once it returned
	closed    bool
	idleTimer *time.Timer

	// The log of emitted messages not yet acknowledged: log[i] has offset
	// base+i. Only the bundle holding busy touches it.
	log   []*pubsub.Message
	base  int64
	timer *time.Timer // next's wait
	// logEnd is base+len(log), readable by the runner's progress reports
	// while the bundle appends.
	logEnd atomic.Int64
}

// acquire returns the session of reader id, starting one (numbered from
// start) when there is none, and locks it for the calling bundle. A cached
// session whose log cannot continue at start (another worker has had the
// reader in between, or the restriction comes from an older run) is closed
// and replaced; Pub/Sub redelivers what it never acknowledged.
func (c *sessionCache) acquire(ctx context.Context, id, subscription, spec string, start int64, cfg *config) (*session, error) {
	c.mu.Lock()
	s := c.m[id]
	if s != nil && s.spec != spec {
		delete(c.m, id)
		go s.close()
		s = nil
	}
	if s == nil {
		var err error
		if s, err = startSession(ctx, id, subscription, spec, start, cfg); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.m[id] = s
	}
	c.mu.Unlock()

	s.busy.Lock()
	s.stopIdleTimer()
	if start < s.base || start > s.base+int64(len(s.log)) {
		s.busy.Unlock()
		c.remove(s)
		s.close()
		return c.acquire(ctx, id, subscription, spec, start, cfg)
	}
	return s, nil
}

// release unlocks the session and arms its idle timer.
func (c *sessionCache) release(s *session) {
	s.mu.Lock()
	if !s.closed {
		s.idleTimer = time.AfterFunc(s.cfg.SessionIdle, func() {
			if s.busy.TryLock() {
				c.remove(s)
				s.close()
				s.busy.Unlock()
			}
		})
	}
	s.mu.Unlock()
	s.busy.Unlock()
}

func (c *sessionCache) remove(s *session) {
	c.mu.Lock()
	if c.m[s.id] == s {
		delete(c.m, s.id)
	}
	c.mu.Unlock()
}

// backlog returns the number of messages waiting on this worker for reader
// id beyond offset claimed, or 0 when the worker has no session for it.
func (c *sessionCache) backlog(id string, claimed int64) int64 {
	c.mu.Lock()
	s := c.m[id]
	c.mu.Unlock()
	if s == nil {
		return 0
	}
	logged := s.logEnd.Load() - 1 - claimed
	return max(logged, 0) + int64(len(s.queue))
}

// startSession connects to Pub/Sub and starts pulling from subscription.
func startSession(ctx context.Context, id, subscription, spec string, start int64, cfg *config) (*session, error) {
	project, err := parseName(subscriptionName, "subscription", subscription)
	if err != nil {
		return nil, err
	}
	// The client and the pull outlive the bundle that starts them.
	client, err := newClient(context.WithoutCancel(ctx), project, cfg)
	if err != nil {
		return nil, err
	}
	sub := client.Subscriber(subscription)
	sub.ReceiveSettings.MaxOutstandingMessages = cfg.MaxBuffered
	sub.ReceiveSettings.NumGoroutines = 1
	rctx, cancel := context.WithCancel(context.Background())
	s := &session{
		id:       id,
		spec:     spec,
		cfg:      cfg,
		queue:    make(chan *pubsub.Message, cfg.MaxBuffered),
		done:     make(chan struct{}),
		cancel:   cancel,
		client:   client,
		received: make(chan struct{}),
		base:     start,
	}
	s.logEnd.Store(start)
	go func() {
		defer close(s.received)
		err := sub.Receive(rctx, func(_ context.Context, m *pubsub.Message) {
			select {
			case s.queue <- m:
			case <-s.done:
				m.Nack()
			}
		})
		if err != nil {
			err = fmt.Errorf("pulling from %s: %w", subscription, err)
		} else if rctx.Err() == nil {
			err = fmt.Errorf("pulling from %s: stopped", subscription)
		}
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}()
	return s, nil
}

func (s *session) stopIdleTimer() {
	s.mu.Lock()
	if s.idleTimer != nil {
		s.idleTimer.Stop()
		s.idleTimer = nil
	}
	s.mu.Unlock()
}

// failed returns the error that ended the streaming pull, if it ended
// while the session was open.
func (s *session) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.err
}

// next returns the next received message, waiting at most wait for one.
// Only the bundle holding the session calls it.
func (s *session) next(ctx context.Context, wait time.Duration) (*pubsub.Message, bool) {
	select {
	case m := <-s.queue:
		return m, true
	default:
		if wait <= 0 {
			return nil, false
		}
	}
	// One timer per session rather than one per call.
	if s.timer == nil {
		s.timer = time.NewTimer(wait)
	} else {
		s.timer.Reset(wait)
	}
	defer s.timer.Stop()
	select {
	case m := <-s.queue:
		return m, true
	case <-s.timer.C:
	case <-s.received:
	case <-s.done:
	case <-ctx.Done():
	}
	return nil, false
}

// append logs an emitted message.
func (s *session) append(m *pubsub.Message) {
	s.log = append(s.log, m)
	s.logEnd.Store(s.base + int64(len(s.log)))
}

// logged returns the logged message at offset off, if there is one.
func (s *session) logged(off int64) (*pubsub.Message, bool) {
	i := off - s.base
	if i < 0 || i >= int64(len(s.log)) {
		return nil, false
	}
	return s.log[i], true
}

// ackBelow acknowledges the logged messages below offset off (their bundle
// committed) and drops them from the log.
func (s *session) ackBelow(off int64) (acked int) {
	n := int(min(max(off-s.base, 0), int64(len(s.log))))
	for _, m := range s.log[:n] {
		m.Ack()
	}
	clear(s.log[:n])
	s.log = s.log[n:]
	if len(s.log) == 0 {
		s.log = nil // let the backing array go
	}
	s.base += int64(n)
	return n
}

// close nacks every message the session holds, so that Pub/Sub redelivers
// them at once, stops the pull once the acks and nacks have been sent, and
// closes the connection.
func (s *session) close() {
	if !s.shut() {
		return
	}
	for _, m := range s.log {
		m.Nack()
	}
	s.log = nil
	s.cancel()
	// Receive returns once its callbacks have returned and the acks and
	// nacks have been sent; until then, nack what a callback still queues.
	// A server that does not answer gets its messages back after the ack
	// deadline.
	timer := time.NewTimer(closeTimeout)
	defer timer.Stop()
	for {
		select {
		case m := <-s.queue:
			m.Nack()
			continue
		case <-s.received:
		case <-timer.C:
		}
		break
	}
	_ = s.client.Close()
}

// closeTimeout bounds how long closing a session waits for its last acks and
// nacks to be sent.
const closeTimeout = 10 * time.Second

// abandon stops the session as a crashed worker would: nothing is nacked and
// the ack deadlines are no longer extended, so Pub/Sub redelivers the
// messages the session held once their deadlines pass.
func (s *session) abandon() {
	if !s.shut() {
		return
	}
	_ = s.client.Close()
	s.cancel()
}

// shut marks the session closed; it returns false when it already was.
func (s *session) shut() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	close(s.done)
	return true
}
