package mqttio

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/brokertest"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// subscribe subscribes a new client to filter at QoS 2 and returns the inbox
// its messages arrive in.
func subscribe(t *testing.T, url, clientID, filter string) brokertest.Inbox {
	t.Helper()
	in := brokertest.NewInbox(1000)
	brokertest.Await(t, newClient(t, url, clientID, true).Subscribe(filter, 2, in.Handle))
	return in
}

// numberedPublications returns n publications "m-{i}" to topic(i).
func numberedPublications(n int, topic func(int) string) []Publication {
	pubs := make([]Publication, n)
	for i := range pubs {
		pubs[i] = Publication{Topic: topic(i), Payload: fmt.Appendf(nil, "m-%d", i)}
	}
	return pubs
}

func TestWriteQoS(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		for _, qos := range []byte{0, 1, 2} {
			t.Run(fmt.Sprintf("QoS%d", qos), func(t *testing.T) {
				b := startEmbedded(t)
				id := safeID(t)
				in := subscribe(t, b.URL(), id+"-sub", "write/#")
				topic := func(i int) string { return fmt.Sprintf("write/d%d/commands", i%3) }

				p, s := beam.NewPipelineWithRoot()
				pubs := beam.CreateList(s, numberedPublications(100, topic))
				rejected := Write(s, []string{b.URL()}, pubs, v, QoS(int(qos)), ClientID(id), MaxPending(7))
				passert.Empty(s, rejected)
				res := ptest.RunAndValidate(t, p)

				got := in.Next(t, 100)
				payloads := brokertest.Payloads(got)
				sort.Strings(payloads)
				require.Equal(t, expected("m", 100), payloads)
				for _, m := range got {
					var i int
					_, err := fmt.Sscanf(string(m.Payload()), "m-%d", &i)
					require.NoError(t, err)
					require.Equal(t, topic(i), m.Topic())
					require.Equal(t, qos, m.Qos())
					require.False(t, m.Retained())
				}
				require.Equal(t, int64(100), counter(t, res, "messages_published"))
				require.Equal(t, int64(100*len("m-00")-10), counter(t, res, "bytes_published"))
				require.Zero(t, counter(t, res, "publish_rejected"))
			})
		}
	})
}

func TestWriteTopicTemplate(t *testing.T) {
	b := startEmbedded(t)
	id := safeID(t)
	in := subscribe(t, b.URL(), id+"-sub", "devices/+/commands")
	pubs := make([]Publication, 20)
	for i := range pubs {
		pubs[i] = Publication{
			Topic:   "ignored/with/a/template",
			Fields:  map[string]string{"device": fmt.Sprintf("pump-%d", i), "unused": "x"},
			Payload: fmt.Appendf(nil, "m-%d", i),
		}
	}

	p, s := beam.NewPipelineWithRoot()
	rejected := Write(s, []string{b.URL()}, beam.CreateList(s, pubs), ClientID(id), TopicTemplate("devices/{device}/commands"))
	passert.Empty(s, rejected)
	ptest.RunAndValidate(t, p)

	for _, m := range in.Next(t, 20) {
		var i int
		_, err := fmt.Sscanf(string(m.Payload()), "m-%d", &i)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("devices/pump-%d/commands", i), m.Topic())
	}
}

// checkRejectFn checks that each rejected element is one the test expects,
// for the expected reason, and emits its payload.
type checkRejectFn struct {
	Want map[string]string // payload -> part of the reason
}

func (f *checkRejectFn) ProcessElement(e PublishError) (string, error) {
	label := string(e.Publication.Payload)
	want, ok := f.Want[label]
	switch {
	case !ok:
		return "", fmt.Errorf("element %q rejected unexpectedly: %s", label, e.Reason)
	case !strings.HasPrefix(e.Reason, "invalid topic: ") || !strings.Contains(e.Reason, want):
		return "", fmt.Errorf("element %q rejected because %q, want a reason that says %q", label, e.Reason, want)
	}
	return label, nil
}

func init() { register.DoFn1x2[PublishError, string, error](&checkRejectFn{}) }

func TestWriteRejectsInvalidElements(t *testing.T) {
	b := startEmbedded(t)
	id := safeID(t)
	in := subscribe(t, b.URL(), id+"-sub", "ok/#")
	long := strings.Repeat("a", maxTopicLen+1)

	plain := map[string]struct{ topic, reason string }{
		"plus":        {"ok/+/x", "wildcard"},
		"plus-inside": {"ok/a+b", "wildcard"},
		"hash":        {"ok/#", "wildcard"},
		"empty":       {"", "must not be empty"},
		"empty-level": {"ok//x", "empty level"},
		"trailing":    {"ok/x/", "empty level"},
		"leading":     {"/ok", "empty level"},
		"nul":         {"ok/\x00", "NUL"},
		"long":        {long, "more than the MQTT limit"},
		"reserved":    {"$SYS/x", "'$'"},
		"utf8":        {"ok/\xff", "UTF-8"},
	}
	templated := map[string]struct {
		fields map[string]string
		reason string
	}{
		"t-slash":   {map[string]string{"device": "a/b"}, `field "device": value "a/b" contains '/'`},
		"t-plus":    {map[string]string{"device": "+"}, `field "device": value "+" contains`},
		"t-hash":    {map[string]string{"device": "#"}, `field "device": value "#" contains`},
		"t-empty":   {map[string]string{"device": ""}, `field "device": value must not be empty`},
		"t-missing": {map[string]string{"other": "x"}, `field "device" is missing`},
		"t-nil":     {nil, `field "device" is missing`},
		"t-nul":     {map[string]string{"device": "a\x00b"}, `field "device": value contains NUL`},
		"t-long":    {map[string]string{"device": long}, "more than the MQTT limit"},
	}
	want := map[string]string{}
	plainPubs := []Publication{{Topic: "ok/plain", Payload: []byte("valid")}, {Topic: "ok", Payload: []byte("valid")}}
	for label, c := range plain {
		plainPubs = append(plainPubs, Publication{Topic: c.topic, Payload: []byte(label)})
		want[label] = c.reason
	}
	templatedPubs := []Publication{{Fields: map[string]string{"device": "pump-1"}, Payload: []byte("valid")}}
	for label, c := range templated {
		templatedPubs = append(templatedPubs, Publication{Fields: c.fields, Payload: []byte(label)})
		want[label] = c.reason
	}
	labels := make([]any, 0, len(want))
	for label := range want {
		labels = append(labels, label)
	}

	p, s := beam.NewPipelineWithRoot()
	url := []string{b.URL()}
	rejected := beam.Flatten(s,
		Write(s, url, beam.CreateList(s, plainPubs), ClientID(id)),
		Write(s, url, beam.CreateList(s, templatedPubs), ClientID(id), TopicTemplate("ok/{device}/commands")))
	passert.Equals(s, beam.ParDo(s, &checkRejectFn{Want: want}, rejected), labels...)
	res := ptest.RunAndValidate(t, p)

	var topics []string
	for _, m := range in.Next(t, 3) {
		topics = append(topics, m.Topic())
	}
	sort.Strings(topics)
	require.Equal(t, []string{"ok", "ok/plain", "ok/pump-1/commands"}, topics)
	require.Equal(t, int64(len(want)), counter(t, res, "publish_rejected"))
	require.Equal(t, int64(3), counter(t, res, "messages_published"))
}

func TestWriteRetain(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startEmbedded(t)
		id := safeID(t)
		topic := "retained/" + id

		p, s := beam.NewPipelineWithRoot()
		pubs := beam.CreateList(s, []Publication{{Topic: topic, Payload: []byte("kept")}})
		passert.Empty(s, Write(s, []string{b.URL()}, pubs, v, ClientID(id), Retain(true)))
		ptest.RunAndValidate(t, p)

		// A subscriber that comes after the publish still gets the message.
		got := subscribe(t, b.URL(), id+"-late", topic).Next(t, 1)
		require.Equal(t, "kept", string(got[0].Payload()))
		require.True(t, got[0].Retained())
	})
}

func TestWriteUnreachableBrokerFails(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		url := closedPortURL(t)

		p, s := beam.NewPipelineWithRoot()
		pubs := beam.CreateList(s, []Publication{{Topic: "a/b", Payload: []byte("x")}})
		Write(s, []string{url}, pubs, v, ClientID(safeID(t)), PublishRetry(2, 500*time.Millisecond), ConnectTimeout(500*time.Millisecond))
		start := time.Now()
		err := ptest.Run(p)
		require.Error(t, err)
		require.Contains(t, err.Error(), "connecting to "+url)
		require.Less(t, time.Since(start), testTimeout)
	})
}

func TestWriteWrongCredentialsFails(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		const password = "not-the-password-7f3a"
		b := startEmbedded(t, embeddedbroker.Auth("u", "p"))

		p, s := beam.NewPipelineWithRoot()
		pubs := beam.CreateList(s, []Publication{{Topic: "a/b", Payload: []byte("x")}})
		Write(s, []string{b.URL()}, pubs, v, ClientID(safeID(t)), Credentials("u", password))
		err := ptest.Run(p)
		require.Error(t, err)
		require.Contains(t, err.Error(), "bad user name or password")
		require.NotContains(t, err.Error(), password)
	})
}

func TestTryWriteRejectsBadArguments(t *testing.T) {
	_, s := beam.NewPipelineWithRoot()
	pubs := beam.CreateList(s, []Publication{{Topic: "a", Payload: []byte("x")}})
	ok := []string{"tcp://localhost:1883"}
	for name, c := range map[string]struct {
		brokers []string
		col     beam.PCollection
		opts    []WriteOption
		want    string
	}{
		"no broker":     {nil, pubs, nil, "no broker URL"},
		"scheme":        {[]string{"http://localhost:1883"}, pubs, nil, "scheme must be one of"},
		"url password":  {[]string{"tcp://u:secret@localhost:1883"}, pubs, nil, "Credentials option"},
		"qos":           {ok, pubs, []WriteOption{QoS(3)}, "option QoS: must be 0, 1 or 2"},
		"template":      {ok, pubs, []WriteOption{TopicTemplate("devices/{device")}, "option TopicTemplate"},
		"template wild": {ok, pubs, []WriteOption{TopicTemplate("devices/+/{device}")}, "option TopicTemplate"},
		"max pending":   {ok, pubs, []WriteOption{MaxPending(0)}, "option MaxPending"},
		"retry":         {ok, pubs, []WriteOption{PublishRetry(0, time.Second)}, "option PublishRetry"},
		"nil option":    {ok, pubs, []WriteOption{nil}, "nil WriteOption"},
		"input type":    {ok, beam.CreateList(s, []string{"a"}), nil, "input must be a PCollection<mqttio.Publication>, got PCollection<string>"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := TryWrite(s, c.brokers, c.col, c.opts...)
			require.ErrorContains(t, err, c.want)
			require.True(t, strings.HasPrefix(err.Error(), "mqttio.Write: "), err.Error())
			require.NotContains(t, err.Error(), "secret")
			require.Panics(t, func() { Write(s, c.brokers, c.col, c.opts...) })
		})
	}
}

// fakeToken is a token the test completes.
type fakeToken struct {
	once    sync.Once
	done    chan struct{}
	err     error
	waiting chan<- *fakeToken // told when someone waits on the token
}

func (tok *fakeToken) complete(err error) {
	tok.once.Do(func() {
		tok.err = err
		close(tok.done)
	})
}

func (tok *fakeToken) Done() <-chan struct{} {
	select {
	case tok.waiting <- tok:
	default:
	}
	return tok.done
}

func (tok *fakeToken) Error() error {
	<-tok.done
	return tok.err
}

// fakeClient is a broker connection whose publishes complete as outcome
// says: with an error, successfully (nil), or never (errPending) until the
// test completes them. It cannot subscribe.
type fakeClient struct {
	brokerConn
	outcome func(topic string, attempt int) error
	waiting chan *fakeToken

	mu        sync.Mutex
	toks      []*fakeToken
	topics    []string
	attempts  map[string]int
	completed []int // how many tokens were complete when each publish was made
}

var errPending = errors.New("pending")

func newFakeClient(outcome func(topic string, attempt int) error) *fakeClient {
	return &fakeClient{outcome: outcome, waiting: make(chan *fakeToken, 1000), attempts: map[string]int{}}
}

func (c *fakeClient) publish(_ context.Context, topic string, _ byte, _ bool, _ *Publication) token {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := 0
	for _, tok := range c.toks {
		select {
		case <-tok.done:
			done++
		default:
		}
	}
	c.attempts[topic]++
	tok := &fakeToken{done: make(chan struct{}), waiting: c.waiting}
	if err := c.outcome(topic, c.attempts[topic]); err != errPending {
		tok.complete(err)
	}
	c.toks, c.topics, c.completed = append(c.toks, tok), append(c.topics, topic), append(c.completed, done)
	return tok
}

func (c *fakeClient) close() {}

func (c *fakeClient) limits() connLimits { return connLimits{maxQoS: 2} }

func (c *fakeClient) token(i int) *fakeToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.toks[i]
}

func (c *fakeClient) published() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.toks)
}

// newFakeWriteFn returns a set-up writeFn whose worker connection is c.
func newFakeWriteFn(t *testing.T, c brokerConn, opts ...WriteOption) *writeFn {
	t.Helper()
	fn, err := newWriteFn([]string{"tcp://broker.invalid:1883"}, append(opts, ClientID(safeID(t))))
	require.NoError(t, err)
	require.NoError(t, fn.Setup())
	writers.mu.Lock()
	w := newWriter(safeID(t), fn.key, fn.Brokers, fn.Cfg)
	w.conn = c
	writers.m[fn.key] = w
	writers.mu.Unlock()
	t.Cleanup(func() {
		fn.Teardown()
		writers.mu.Lock()
		if w := writers.m[fn.key]; w != nil && w.idle != nil {
			w.idle.Stop()
		}
		delete(writers.m, fn.key)
		writers.mu.Unlock()
	})
	return fn
}

func noReject(t *testing.T) func(beam.EventTime, PublishError) {
	return func(_ beam.EventTime, e PublishError) { t.Errorf("unexpected rejection: %s", e.Reason) }
}

func receive(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testTimeout):
		t.Fatal("timed out")
		return nil
	}
}

func TestWritePipelinesPublishes(t *testing.T) {
	c := newFakeClient(func(string, int) error { return errPending })
	fn := newFakeWriteFn(t, c, MaxPending(3))
	ctx := context.Background()
	pub := func(i int) Publication { return Publication{Topic: fmt.Sprintf("t/%d", i), Payload: []byte("x")} }

	fn.StartBundle(ctx, noReject(t))
	for i := range 3 {
		require.NoError(t, fn.ProcessElement(ctx, 0, pub(i), noReject(t)))
	}
	require.Equal(t, 3, c.published(), "publishes go out without waiting for acknowledgements")

	// With MaxPending in flight, the next element waits for the oldest.
	done := make(chan error, 1)
	go func() { done <- fn.ProcessElement(ctx, 0, pub(3), noReject(t)) }()
	require.Same(t, c.token(0), <-c.waiting)
	require.Equal(t, 3, c.published())
	c.token(0).complete(nil)
	require.NoError(t, receive(t, done))
	require.Equal(t, []int{0, 0, 0, 1}, c.completed)

	// The bundle ends when every publish is acknowledged.
	go func() { done <- fn.FinishBundle(ctx, noReject(t)) }()
	for i := 1; i < 4; i++ {
		c.token(i).complete(nil)
	}
	require.NoError(t, receive(t, done))
	require.Nil(t, fn.w, "the connection is released at the end of the bundle")
}

func TestWriteRetriesFailedPublishes(t *testing.T) {
	c := newFakeClient(func(topic string, attempt int) error {
		if topic == "t/flaky" && attempt < 3 {
			return errors.New("boom")
		}
		return nil
	})
	fn := newFakeWriteFn(t, c, PublishRetry(3, testTimeout))
	ctx := context.Background()
	fn.StartBundle(ctx, noReject(t))
	for _, topic := range []string{"t/a", "t/flaky", "t/b"} {
		require.NoError(t, fn.ProcessElement(ctx, 0, Publication{Topic: topic}, noReject(t)))
	}
	require.NoError(t, fn.FinishBundle(ctx, noReject(t)))
	require.Equal(t, map[string]int{"t/a": 1, "t/flaky": 3, "t/b": 1}, c.attempts)
	require.Equal(t, int64(3), fn.published)
}

func TestWriteFailsAfterTries(t *testing.T) {
	for name, c := range map[string]struct {
		outcome func(string, int) error
		want    string
	}{
		"error":   {func(string, int) error { return errors.New("boom") }, "boom"},
		"timeout": {func(string, int) error { return errPending }, "no acknowledgement from the broker within 50ms"},
	} {
		t.Run(name, func(t *testing.T) {
			client := newFakeClient(c.outcome)
			fn := newFakeWriteFn(t, client, PublishRetry(3, 50*time.Millisecond))
			ctx := context.Background()
			fn.StartBundle(ctx, noReject(t))
			require.NoError(t, fn.ProcessElement(ctx, 0, Publication{Topic: "t/bad"}, noReject(t)))
			err := fn.FinishBundle(ctx, noReject(t))
			require.ErrorContains(t, err, `mqttio.Write: publishing to topic "t/bad"`)
			require.ErrorContains(t, err, "failed after 3 attempts: "+c.want)
			require.Equal(t, 3, client.published())
			require.Nil(t, fn.w, "a failed bundle releases the connection")
		})
	}
}

func TestWritersShareConnectionsAndCloseWhenIdle(t *testing.T) {
	eachProtocol(t, func(t *testing.T, v Option) {
		b := startEmbedded(t)
		id := safeID(t)
		ctx := context.Background()
		newFn := func(opts ...WriteOption) *writeFn {
			fn, err := newWriteFn([]string{b.URL()}, append(opts, v, ClientID(id), SessionIdle(50*time.Millisecond)))
			require.NoError(t, err)
			require.NoError(t, fn.Setup())
			fn.StartBundle(ctx, noReject(t))
			return fn
		}
		a, same, other := newFn(), newFn(), newFn(Credentials("someone", "x"))
		for _, fn := range []*writeFn{a, same, other} {
			require.NoError(t, fn.acquire(ctx))
		}
		require.Same(t, a.w, same.w, "bundles with the same settings share a connection")
		require.Same(t, a.conn, same.conn)
		require.NotSame(t, a.w, other.w)
		require.Regexp(t, "^"+regexp.QuoteMeta(id)+"-[0-9a-f]{8}$", a.w.id)
		require.Equal(t, a.w.id+"-2", other.w.id, "client ids are unique in the process")

		w := a.w
		require.NoError(t, a.FinishBundle(ctx, noReject(t)))
		require.NoError(t, same.FinishBundle(ctx, noReject(t)))
		require.NoError(t, other.FinishBundle(ctx, noReject(t)))
		select {
		case <-w.closed:
		case <-time.After(testTimeout):
			t.Fatal("the idle connection was not closed")
		}
		writers.mu.Lock()
		_, cached := writers.m[a.key]
		writers.mu.Unlock()
		require.False(t, cached)

		// A later bundle connects again, under the same client id.
		in := subscribe(t, b.URL(), id+"-sub", "again")
		again := newFn()
		require.NoError(t, again.ProcessElement(ctx, 0, Publication{Topic: "again", Payload: []byte("x")}, noReject(t)))
		require.NotSame(t, w, again.w)
		require.Equal(t, w.id, again.w.id)
		require.NoError(t, again.FinishBundle(ctx, noReject(t)))
		require.Equal(t, "x", string(in.Next(t, 1)[0].Payload()))
	})
}

// doneClient answers every publish with the same completed token.
type doneClient struct {
	brokerConn
	tok *fakeToken
}

func (c *doneClient) publish(context.Context, string, byte, bool, *Publication) token { return c.tok }

func (c *doneClient) close() {}

func TestWritePublishPathAllocations(t *testing.T) {
	tok := &fakeToken{done: make(chan struct{})}
	tok.complete(nil)
	ctx := context.Background()
	for name, c := range map[string]struct {
		opts []WriteOption
		pub  Publication
		max  float64
	}{
		// Boxing the payload for paho's Publish(..., any).
		"topic": {nil, Publication{Topic: "devices/d1/commands", Payload: []byte("x")}, 1},
		// And the topic built from the template.
		"template": {[]WriteOption{TopicTemplate("devices/{device}/commands")},
			Publication{Fields: map[string]string{"device": "d1"}, Payload: []byte("x")}, 2},
	} {
		t.Run(name, func(t *testing.T) {
			fn := newFakeWriteFn(t, &doneClient{tok: tok}, c.opts...)
			fn.StartBundle(ctx, noReject(t))
			reject := noReject(t)
			allocs := testing.AllocsPerRun(1000, func() {
				if err := fn.ProcessElement(ctx, 0, c.pub, reject); err != nil {
					t.Fatal(err)
				}
			})
			require.LessOrEqual(t, allocs, c.max)
		})
	}
}
