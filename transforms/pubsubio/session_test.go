package pubsubio

import (
	"context"
	"math"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/mqttbeam/mqttbeam/internal/streamread"
	"github.com/stretchr/testify/require"
)

// TestSessionCloseNacksWhatItHolds checks that closing a session
// acknowledges nothing it was not told to and hands the rest back to Pub/Sub
// at once.
func TestSessionCloseNacksWhatItHolds(t *testing.T) {
	f := newFakePubSub(t, false)
	ids := f.publish(3)
	cfg := defaultReadConfig()
	cfg.Endpoint = f.Addr
	ctx := context.Background()

	s, err := startSession(ctx, testSub, &cfg)
	require.NoError(t, err)
	var order []string
	for _, m := range receive(t, s, 3) {
		s.log.Append(m)
		order = append(order, m.ID)
	}
	require.Equal(t, 1, s.ackBelow(1))
	s.Close()
	require.Equal(t, 1, f.acked(ids))
	require.Equal(t, 1, f.Message(order[0]).Acks, "the message below the offset is the one acknowledged")

	// The two nacked messages are delivered again, without waiting for
	// their ack deadline.
	again, err := startSession(ctx, testSub, &cfg)
	require.NoError(t, err)
	var redelivered []string
	for _, m := range receive(t, again, 2) {
		redelivered = append(redelivered, m.ID)
		m.Ack()
	}
	again.Close()
	require.ElementsMatch(t, order[1:], redelivered)
	require.Equal(t, 3, f.acked(ids))
}

// TestProgressReportsTheBacklogOnTheWorker checks what a runner (Dataflow's
// autoscaler) sees: the messages waiting on the worker, not the unbounded
// offset range.
func TestProgressReportsTheBacklogOnTheWorker(t *testing.T) {
	f := newFakePubSub(t, false)
	f.publish(3)
	fn := &readFn{Subscription: testSub, Cfg: defaultReadConfig()}
	fn.Cfg.Endpoint = f.Addr
	require.NoError(t, fn.Setup())
	ctx := context.Background()
	r := streamread.Restriction{ClientID: testSub + "#0", Start: 0, End: math.MaxInt64}

	require.Equal(t, 1.0, fn.RestrictionSize(nil, r), "no session on this worker yet: at least 1")
	s, err := acquire(ctx, r.ClientID, testSub, fn.spec, 0, &fn.Cfg)
	require.NoError(t, err)
	waitFor(t, "3 messages received", func() bool { return len(s.queue) == 3 })

	rt := fn.CreateTracker(r)
	done, remaining := rt.GetProgress()
	require.Equal(t, []float64{0, 3}, []float64{done, remaining})
	require.Equal(t, 3.0, fn.RestrictionSize(nil, r))

	for off, m := range receive(t, s, 2) {
		s.log.Append(m)
		require.True(t, rt.TryClaim(int64(off)))
	}
	done, remaining = rt.GetProgress()
	require.Equal(t, []float64{2, 1}, []float64{done, remaining})
	release(s)
}

// receive takes n messages from s, waiting at most 5s for each.
func receive(t *testing.T, s *session, n int) []*pubsub.Message {
	t.Helper()
	msgs := make([]*pubsub.Message, n)
	for i := range msgs {
		m, ok := s.next(context.Background(), 5*time.Second)
		require.True(t, ok, "message %d of %d", i+1, n)
		msgs[i] = m
	}
	return msgs
}
