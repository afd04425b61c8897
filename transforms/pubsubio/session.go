package pubsubio

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/mqttbeam/mqttbeam/internal/resname"
	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

// sessions is the per-worker cache of reader sessions, keyed by reader id.
var sessions = streamread.NewCache[*session]()

// session is one reader's streaming pull (the client library's Receive,
// which also extends the ack deadlines of the messages it holds) and the
// messages it has received but not yet had acknowledged. Only one bundle
// uses a session at a time (acquire/release).
type session struct {
	lease streamread.Lease // spec: subscription and settings
	cfg   *readConfig

	// Fed by Receive's callback; bounded, so a full buffer holds Receive
	// back and leaves the backlog in the subscription.
	queue    chan *pubsub.Message
	done     chan struct{} // closed when the session is closed
	cancel   context.CancelFunc
	client   *pubsub.Client
	received chan struct{} // closed when Receive has returned

	mu     sync.Mutex
	err    error // Receive's error, once it returned
	closed bool

	log   streamread.Log[*pubsub.Message] // emitted, not yet acknowledged
	timer *time.Timer                     // next's wait
}

// acquire returns the session of reader id, locked for the calling bundle
// (see streamread.Cache.Acquire), starting one with its log numbered from
// start when there is none.
func acquire(ctx context.Context, id, subscription, spec string, start int64, cfg *readConfig) (*session, error) {
	open := func() (*session, error) { return startSession(ctx, subscription, cfg) }
	return sessions.Acquire(id, spec, start, open)
}

// release gives the session up until the next bundle; it closes when idle
// for SessionIdle.
func release(s *session) { sessions.Release(s, s.cfg.SessionIdle) }

// backlog returns the number of messages waiting on this worker for reader
// id beyond offset claimed, or 0 when the worker has no session for it.
func backlog(id string, claimed int64) int64 {
	if s, ok := sessions.Get(id); ok {
		return s.log.Backlog(claimed) + int64(len(s.queue))
	}
	return 0
}

// Lease is the session's part that the cache manages.
func (s *session) Lease() *streamread.Lease { return &s.lease }

// Offsets is the session's log, for the cache.
func (s *session) Offsets() streamread.Offsets { return &s.log }

// startSession connects to Pub/Sub and starts pulling from subscription.
func startSession(ctx context.Context, subscription string, cfg *readConfig) (*session, error) {
	project, err := parseName(resname.SubscriptionRE, "subscription", subscription)
	if err != nil {
		return nil, err
	}
	// The client and the pull outlive the bundle that starts them.
	client, err := newClient(context.WithoutCancel(ctx), project, &cfg.clientConfig)
	if err != nil {
		return nil, err
	}
	sub := client.Subscriber(subscription)
	sub.ReceiveSettings.MaxOutstandingMessages = cfg.MaxBuffered
	sub.ReceiveSettings.NumGoroutines = 1
	rctx, cancel := context.WithCancel(context.Background())
	s := &session{
		cfg:      cfg,
		queue:    make(chan *pubsub.Message, cfg.MaxBuffered),
		done:     make(chan struct{}),
		cancel:   cancel,
		client:   client,
		received: make(chan struct{}),
	}
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

// ackBelow acknowledges the logged messages below offset off (their bundle
// committed) and drops them from the log.
func (s *session) ackBelow(off int64) (acked int) {
	return s.log.AckBelow(off, func(m *pubsub.Message) bool {
		m.Ack()
		return true
	})
}

// Close nacks every message the session holds, so that Pub/Sub redelivers
// them at once, stops the pull once the acks and nacks have been sent, and
// closes the connection.
func (s *session) Close() {
	if !s.shut() {
		return
	}
	for _, m := range s.log.DropAll() {
		m.Nack()
	}
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
	close(s.done)
	return true
}
