package streamread

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLog(t *testing.T) {
	var l Log[string]
	l.StartAt(10)
	assert.True(t, l.Continues(10))
	assert.False(t, l.Continues(11), "nothing logged at 10 yet")
	assert.Equal(t, int64(0), l.Backlog(9))

	for i, m := range []string{"a", "b", "c", "d"} {
		assert.Equal(t, int64(10+i), l.Append(m))
	}
	m, ok := l.At(11)
	assert.True(t, ok)
	assert.Equal(t, "b", m)
	_, ok = l.At(14)
	assert.False(t, ok)
	_, ok = l.At(9)
	assert.False(t, ok)
	assert.Equal(t, int64(4), l.Backlog(9), "all four are beyond offset 9")
	assert.Equal(t, int64(1), l.Backlog(12))

	var acked []string
	n := l.AckBelow(12, func(m string) bool { acked = append(acked, m); return m != "b" })
	assert.Equal(t, []string{"a", "b"}, acked)
	assert.Equal(t, 1, n, "only what ack reports as acknowledged counts")
	assert.Equal(t, int64(12), l.Base())
	assert.Equal(t, 2, l.Len())
	assert.False(t, l.Continues(11), "offset 11 was dropped")
	assert.True(t, l.Continues(14))
	assert.False(t, l.Continues(15))
	assert.Equal(t, 0, l.AckBelow(5, func(string) bool { return true }), "below the base: nothing")

	assert.Equal(t, []string{"c", "d"}, l.DropAll())
	assert.Equal(t, int64(14), l.Base())
	assert.Equal(t, 0, l.Len())
}

// testSession counts its closes; closed is closed by the first.
type testSession struct {
	lease  Lease
	log    Log[string]
	name   string
	closes atomic.Int32
	closed chan struct{}
}

func newTestSession(name string) *testSession {
	return &testSession{name: name, closed: make(chan struct{})}
}

func (s *testSession) Lease() *Lease { return &s.lease }

func (s *testSession) Offsets() Offsets { return &s.log }

func (s *testSession) Close() {
	if s.closes.Add(1) == 1 {
		close(s.closed)
	}
}

func TestCacheReusesReplacesAndExpires(t *testing.T) {
	c := NewCache[*testSession]()
	var opened []*testSession
	open := func(name string) func() (*testSession, error) {
		return func() (*testSession, error) {
			s := newTestSession(name)
			opened = append(opened, s)
			return s, nil
		}
	}
	first, err := c.Acquire("r0", "spec", 7, open("first"))
	require.NoError(t, err)
	assert.Equal(t, int64(7), first.log.Base(), "a new log is numbered from the restriction's start")
	first.log.Append("m7")
	c.Release(first, time.Hour)
	again, err := c.Acquire("r0", "spec", 8, open("unused"))
	require.NoError(t, err)
	assert.Same(t, first, again, "a cached session whose log continues is reused")
	c.Release(again, time.Hour)
	got, ok := c.Get("r0")
	assert.True(t, ok)
	assert.Same(t, first, got)

	// Another spec under the same reader id: a new session; the old one closes.
	other, err := c.Acquire("r0", "other spec", 0, open("other"))
	require.NoError(t, err)
	assert.Equal(t, "other", other.name)
	awaitClosed(t, first)
	c.Release(other, time.Hour)

	// A log that does not continue at the restriction: replaced at once.
	fresh, err := c.Acquire("r0", "other spec", 5, open("fresh"))
	require.NoError(t, err)
	assert.Equal(t, "fresh", fresh.name)
	assert.Equal(t, int64(5), fresh.log.Base())
	assert.Equal(t, int32(1), other.closes.Load())

	// Released, it closes and leaves the cache once idle.
	c.Release(fresh, time.Millisecond)
	awaitClosed(t, fresh)
	require.Eventually(t, func() bool { _, ok := c.Get("r0"); return !ok }, 5*time.Second, time.Millisecond)
	assert.Len(t, opened, 3)

	_, err = c.Acquire("r1", "spec", 0, func() (*testSession, error) { return nil, errors.New("no connection") })
	require.EqualError(t, err, "no connection")
	_, ok = c.Get("r1")
	assert.False(t, ok, "a session that failed to open is not cached")
}

// A session in use is not closed by its idle timer, nor handed to a second
// bundle; TakeAll empties the cache.
func TestCacheLease(t *testing.T) {
	c := NewCache[*testSession]()
	s, err := c.Acquire("r0", "spec", 0, func() (*testSession, error) { return newTestSession("s"), nil })
	require.NoError(t, err)
	assert.False(t, s.lease.busy.TryLock(), "held by the acquiring bundle")

	c.Remove(s)
	c.Release(s, time.Nanosecond)
	assert.Nil(t, s.lease.idle, "a session no longer cached gets no idle timer")
	assert.True(t, s.lease.busy.TryLock(), "released")
	s.lease.Unlock()

	a := newTestSession("a")
	held, err := c.Acquire("r1", "spec", 0, func() (*testSession, error) { return a, nil })
	require.NoError(t, err)
	assert.Equal(t, []*testSession{held}, c.TakeAll())
	_, ok := c.Get("r1")
	assert.False(t, ok)
	assert.Equal(t, int32(0), a.closes.Load(), "TakeAll leaves closing to the caller")
}

func awaitClosed(t *testing.T, s *testSession) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("session %s was not closed", s.name)
	}
}
