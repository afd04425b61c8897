package pubsubio

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function2x1(messageLine)
	register.DoFn2x1[context.Context, Message, error](&checkUnackedFn{})
}

const (
	testTopic = "projects/test-project/topics/telemetry"
	testSub   = "projects/test-project/subscriptions/telemetry-job"
)

// fakePubSub is a pstest server with a topic and a subscription, whose clock
// a test can move forward to expire ack deadlines.
type fakePubSub struct {
	*pstest.Server
	skew atomic.Int64 // nanoseconds added to the server's clock
}

// newFakePubSub starts a pstest server with testTopic and testSub (ack
// deadline 10s, ordering as given); the test's cleanup stops it.
func newFakePubSub(t *testing.T, ordering bool) *fakePubSub {
	t.Helper()
	f := &fakePubSub{Server: pstest.NewServer()}
	f.SetTimeNowFunc(func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) })
	t.Cleanup(func() {
		closeSessions()
		require.NoError(t, f.Close())
	})
	ctx := context.Background()
	_, err := f.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: testTopic})
	require.NoError(t, err)
	_, err = f.GServer.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: testSub, Topic: testTopic, AckDeadlineSeconds: 10, EnableMessageOrdering: ordering,
	})
	require.NoError(t, err)
	servers.Store(f.Addr, f.Server)
	t.Cleanup(func() { servers.Delete(f.Addr) })
	return f
}

// advance moves the server's clock forward by d.
func (f *fakePubSub) advance(d time.Duration) { f.skew.Add(int64(d)) }

// publish publishes n messages "m0".."m{n-1}" with an attribute naming each,
// and returns their ids in order.
func (f *fakePubSub) publish(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.Publish(testTopic, fmt.Appendf(nil, "m%d", i), map[string]string{"n": fmt.Sprint(i)})
	}
	return ids
}

// acked returns how many of the messages with ids have been acknowledged.
func (f *fakePubSub) acked(ids []string) int {
	n := 0
	for _, id := range ids {
		if f.Message(id).Acks > 0 {
			n++
		}
	}
	return n
}

// waitFor polls cond every 10ms until it holds or 10s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closeSessions closes this process's reader sessions, as the idle timer
// would, nacking what they hold.
func closeSessions() {
	for _, s := range takeSessions() {
		s.Close()
		s.lease.Unlock()
	}
}

// crashSessions stops this process's reader sessions as a crash would:
// without acknowledging or nacking anything.
func crashSessions() {
	for _, s := range takeSessions() {
		s.abandon()
		s.lease.Unlock()
	}
}

// takeSessions empties the session cache and returns its sessions, each
// locked once the bundle using it (if any) has released it.
func takeSessions() []*session {
	all := sessions.TakeAll()
	for _, s := range all {
		s.lease.Lock()
	}
	return all
}

// messageLine describes a read Message and its element timestamp, for
// passert.
func messageLine(et beam.EventTime, m Message) string {
	keys := make([]string, 0, len(m.Attributes))
	for k, v := range m.Attributes {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return fmt.Sprintf("%s|%s|%s|%s|ts=publish_time:%t", m.Data, strings.Join(keys, ","), m.OrderingKey, m.ID,
		!m.PublishTime.IsZero() && et.ToTime().Equal(m.PublishTime.Truncate(time.Millisecond)))
}

// servers maps the address of each running fake to its server, for DoFns
// that inspect it from inside a pipeline.
var servers sync.Map

// checkUnackedFn counts the messages it sees that Pub/Sub already has as
// acknowledged: with acks deferred until the emitting bundle committed,
// there must be none, since this step runs in that bundle.
type checkUnackedFn struct {
	Addr string
}

var (
	seenCounter       = beam.NewCounter("test", "seen")
	ackedEarlyCounter = beam.NewCounter("test", "acked_early")
)

func (fn *checkUnackedFn) ProcessElement(ctx context.Context, m Message) error {
	srv, ok := servers.Load(fn.Addr)
	if !ok {
		return fmt.Errorf("no fake Pub/Sub at %s", fn.Addr)
	}
	seenCounter.Inc(ctx, 1)
	if msg := srv.(*pstest.Server).Message(m.ID); msg == nil || msg.Acks > 0 {
		ackedEarlyCounter.Inc(ctx, 1)
	}
	return nil
}
