package streamread

import (
	"sync"
	"sync/atomic"
	"time"
)

// Log is a reader's log of the messages it has emitted whose bundles have
// not been seen to commit: the message at index i has offset Base()+i. Only
// the bundle holding the session uses it, except Backlog, which the
// runner's progress reports may call at any time.
type Log[M any] struct {
	msgs []M
	base int64
	end  atomic.Int64 // base + len(msgs)
}

// StartAt makes an empty log number its messages from offset start.
func (l *Log[M]) StartAt(start int64) {
	l.msgs, l.base = nil, start
	l.end.Store(start)
}

// Base is the offset of the oldest message logged.
func (l *Log[M]) Base() int64 { return l.base }

// Len is the number of messages logged.
func (l *Log[M]) Len() int { return len(l.msgs) }

// Continues reports whether a restriction starting at start continues this
// log: start is an offset the log has reached, and none below it has been
// dropped. A restriction that does not (another worker had the reader in
// between, or it comes from an older run) needs a fresh session.
func (l *Log[M]) Continues(start int64) bool {
	return start >= l.base && start <= l.base+int64(len(l.msgs))
}

// Append logs an emitted message and returns its offset.
func (l *Log[M]) Append(m M) int64 {
	l.msgs = append(l.msgs, m)
	end := l.base + int64(len(l.msgs))
	l.end.Store(end)
	return end - 1
}

// At returns the logged message at offset off, if there is one.
func (l *Log[M]) At(off int64) (M, bool) {
	i := off - l.base
	if i < 0 || i >= int64(len(l.msgs)) {
		var zero M
		return zero, false
	}
	return l.msgs[i], true
}

// AckBelow drops the logged messages below offset off (their bundle
// committed), calling ack for each, and returns how many ack reported as
// acknowledged.
func (l *Log[M]) AckBelow(off int64, ack func(M) bool) (acked int) {
	n := int(min(max(off-l.base, 0), int64(len(l.msgs))))
	for _, m := range l.msgs[:n] {
		if ack(m) {
			acked++
		}
	}
	clear(l.msgs[:n])
	l.msgs = l.msgs[n:]
	if len(l.msgs) == 0 {
		l.msgs = nil // let the backing array go
	}
	l.base += int64(n)
	return acked
}

// DropAll empties the log and returns what it held.
func (l *Log[M]) DropAll() []M {
	msgs := l.msgs
	l.msgs = nil
	l.base += int64(len(msgs))
	return msgs
}

// Backlog is the number of messages logged beyond offset claimed.
func (l *Log[M]) Backlog(claimed int64) int64 {
	return max(l.end.Load()-1-claimed, 0)
}

// Session is a reader session that a Cache keeps: a connection, the
// messages received on it, and their Log.
type Session interface {
	comparable
	// Lease returns the part of the session that the cache manages.
	Lease() *Lease
	// Offsets returns the session's Log.
	Offsets() Offsets
	// Close ends the session. The cache may call it more than once, and
	// while the session's bundle lock is held.
	Close()
}

// Offsets is what a Cache needs of a session's Log, whatever its messages.
type Offsets interface {
	StartAt(start int64)
	Continues(start int64) bool
}

// Lease is what a Cache keeps of a session: its reader id and spec, the
// lock a bundle holds while it uses the session, and the timer that closes
// the session when no bundle has used it for a while.
type Lease struct {
	id, spec string
	busy     sync.Mutex

	mu   sync.Mutex
	idle *time.Timer
}

// Lock waits until no bundle uses the session and takes it.
func (l *Lease) Lock() { l.busy.Lock() }

// Unlock gives the session up.
func (l *Lease) Unlock() { l.busy.Unlock() }

func (l *Lease) stopIdleTimer() {
	l.mu.Lock()
	if l.idle != nil {
		l.idle.Stop()
		l.idle = nil
	}
	l.mu.Unlock()
}

// Cache is a worker's cache of reader sessions, keyed by reader id. It is
// a streaming reader's one piece of global state: Beam creates DoFn
// instances freely, but a reader's connection and the messages it has
// emitted but not acknowledged must outlive the bundles and DoFn instances
// that use them. Its methods are safe for concurrent use.
type Cache[S Session] struct {
	mu sync.Mutex
	m  map[string]S
}

// NewCache returns an empty cache.
func NewCache[S Session]() *Cache[S] {
	return &Cache[S]{m: map[string]S{}}
}

// Acquire returns the session of reader id for a restriction starting at
// start and locks it for the calling bundle. It opens one, its log numbered
// from start, when the cache has none for id or has one with another spec
// (the reader id reused with other settings), and replaces a session whose
// log does not continue at start (Log.Continues). A replaced session is
// closed: the source redelivers what it never acknowledged.
func (c *Cache[S]) Acquire(id, spec string, start int64, open func() (S, error)) (S, error) {
	var zero S
	c.mu.Lock()
	s, ok := c.m[id]
	if ok && s.Lease().spec != spec {
		delete(c.m, id)
		go s.Close()
		ok = false
	}
	if !ok {
		var err error
		if s, err = open(); err != nil {
			c.mu.Unlock()
			return zero, err
		}
		s.Offsets().StartAt(start)
		l := s.Lease()
		l.id, l.spec = id, spec
		c.m[id] = s
	}
	c.mu.Unlock()

	l := s.Lease()
	l.Lock()
	l.stopIdleTimer()
	if !s.Offsets().Continues(start) {
		l.Unlock()
		c.Remove(s)
		s.Close()
		return c.Acquire(id, spec, start, open)
	}
	return s, nil
}

// Release gives a session acquired by a bundle up, and closes and forgets
// it once no bundle has acquired it for idle.
func (c *Cache[S]) Release(s S, idle time.Duration) {
	l := s.Lease()
	c.mu.Lock()
	cached := c.m[l.id] == s
	c.mu.Unlock()
	if cached {
		l.mu.Lock()
		l.idle = time.AfterFunc(idle, func() {
			if l.busy.TryLock() {
				c.Remove(s)
				s.Close()
				l.Unlock()
			}
		})
		l.mu.Unlock()
	}
	l.Unlock()
}

// Remove forgets a session, if the cache still has it.
func (c *Cache[S]) Remove(s S) {
	l := s.Lease()
	c.mu.Lock()
	if c.m[l.id] == s {
		delete(c.m, l.id)
	}
	c.mu.Unlock()
	l.stopIdleTimer()
}

// Get returns the session of reader id, if the cache has one, without
// locking it.
func (c *Cache[S]) Get(id string) (S, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[id]
	return s, ok
}

// All returns the cached sessions, without locking them, e.g. for a local
// run's progress report.
func (c *Cache[S]) All() []S {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := make([]S, 0, len(c.m))
	for _, s := range c.m {
		all = append(all, s)
	}
	return all
}

// TakeAll empties the cache and returns its sessions, for tests that stop
// them as an idle timeout or a crash would.
func (c *Cache[S]) TakeAll() []S {
	c.mu.Lock()
	all := make([]S, 0, len(c.m))
	for id, s := range c.m {
		all = append(all, s)
		delete(c.m, id)
	}
	c.mu.Unlock()
	for _, s := range all {
		s.Lease().stopIdleTimer()
	}
	return all
}
