package pubsubio

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"cloud.google.com/go/pubsub/v2"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/internal/resname"
)

func init() {
	register.DoFn2x1[context.Context, Message, error](&writeFn{})
}

// Beam metrics of Write, in namespace "pubsubio".
var (
	published     = beam.NewCounter("pubsubio", "published")
	publishErrors = beam.NewCounter("pubsubio", "publish_errors")
)

// Write publishes col, a PCollection<Message>, to topic, given as
// projects/PROJECT/topics/TOPIC. Each Message's Data and Attributes are
// published, and its OrderingKey when the Ordering option is on; ID and
// PublishTime are ignored.
//
// Publishes are batched (see Batching) and awaited before the bundle
// finishes: a publish that fails fails the bundle, which the runner retries,
// so nothing is dropped (a retried bundle can publish duplicates). Write
// panics when the arguments or options are invalid; TryWrite returns the
// error instead.
func Write(s beam.Scope, topic string, col beam.PCollection, opts ...WriteOption) {
	if err := TryWrite(s, topic, col, opts...); err != nil {
		panic(err)
	}
}

// TryWrite is Write returning an error instead of panicking.
func TryWrite(s beam.Scope, topic string, col beam.PCollection, opts ...WriteOption) error {
	cfg, err := newWriteConfig(opts)
	if err != nil {
		return err
	}
	if _, err := parseName(resname.TopicRE, "topic", topic); err != nil {
		return err
	}
	want := reflect.TypeOf(Message{})
	if !col.IsValid() || col.Type().Type() != want {
		got := "an invalid PCollection"
		if col.IsValid() {
			got = fmt.Sprintf("PCollection<%v>", col.Type().Type())
		}
		return fmt.Errorf("pubsubio.Write: the input must be a PCollection<%v>, got %s", want, got)
	}
	s = s.Scope("pubsubio.Write")
	if _, err := beam.TryParDo(s, &writeFn{Topic: topic, Cfg: cfg}, col); err != nil {
		return fmt.Errorf("pubsubio.Write: %w", err)
	}
	return nil
}

// writeFn is the DoFn behind Write.
type writeFn struct {
	Topic string
	Cfg   writeConfig

	pub     *publisher
	pending []pendingPublish
}

// pendingPublish is a publish of the current bundle not yet awaited.
type pendingPublish struct {
	result *pubsub.PublishResult
	key    string
}

// Setup takes this worker's publisher for the topic and settings.
func (fn *writeFn) Setup(ctx context.Context) error {
	pub, err := publishers.acquire(ctx, fn.Topic, &fn.Cfg)
	if err != nil {
		return err
	}
	fn.pub = pub
	return nil
}

// ProcessElement hands m to the publisher, which batches it.
func (fn *writeFn) ProcessElement(ctx context.Context, m Message) error {
	msg := &pubsub.Message{Data: m.Data, Attributes: m.Attributes}
	if fn.Cfg.Ordering {
		msg.OrderingKey = m.OrderingKey
	}
	fn.pending = append(fn.pending, pendingPublish{fn.pub.p.Publish(ctx, msg), msg.OrderingKey})
	return nil
}

// FinishBundle waits for every publish of the bundle and fails the bundle
// when one failed.
func (fn *writeFn) FinishBundle(ctx context.Context) error {
	pending := fn.pending
	fn.pending = fn.pending[:0]
	var firstErr error
	var ok, failed int64
	for _, p := range pending {
		if _, err := p.result.Get(ctx); err != nil {
			failed++
			if p.key != "" {
				// An ordered publisher pauses a key after a failure; the
				// retried bundle publishes it again.
				fn.pub.p.ResumePublish(p.key)
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ok++
	}
	published.Inc(ctx, ok)
	if failed > 0 {
		publishErrors.Inc(ctx, failed)
		return fmt.Errorf("pubsubio.Write: %d of %d messages to %s not published: %w", failed, len(pending), fn.Topic, firstErr)
	}
	return nil
}

// Teardown returns the publisher to the cache.
func (fn *writeFn) Teardown() {
	if fn.pub != nil {
		publishers.release(fn.pub)
		fn.pub = nil
	}
}

// publishers is the per-worker cache of publishers: Beam creates writeFn
// instances freely, but a publisher (a gRPC connection and its batching
// goroutines) is meant to be shared by all of them.
var publishers = publisherCache{m: map[string]*publisher{}}

type publisherCache struct {
	mu sync.Mutex
	m  map[string]*publisher
}

// publisher is a shared Pub/Sub publisher and the number of writeFns using it.
type publisher struct {
	key    string
	client *pubsub.Client
	p      *pubsub.Publisher
	refs   int
}

// acquire returns the publisher for topic with cfg's settings, creating it
// when none is cached.
func (c *publisherCache) acquire(ctx context.Context, topic string, cfg *writeConfig) (*publisher, error) {
	key := fmt.Sprintf("%s\x00%s\x00%t\x00%d\x00%d\x00%v\x00%v", topic, cfg.Endpoint, cfg.Ordering,
		cfg.BatchCount, cfg.BatchBytes, cfg.BatchDelay, cfg.PublishTimeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.m[key]; p != nil {
		p.refs++
		return p, nil
	}
	project, err := parseName(resname.TopicRE, "topic", topic)
	if err != nil {
		return nil, err
	}
	client, err := newClient(ctx, project, &cfg.clientConfig)
	if err != nil {
		return nil, err
	}
	p := client.Publisher(topic)
	p.EnableMessageOrdering = cfg.Ordering
	p.PublishSettings.CountThreshold = cfg.BatchCount
	p.PublishSettings.ByteThreshold = cfg.BatchBytes
	p.PublishSettings.DelayThreshold = cfg.BatchDelay
	p.PublishSettings.Timeout = cfg.PublishTimeout
	pub := &publisher{key: key, client: client, p: p, refs: 1}
	c.m[key] = pub
	return pub, nil
}

// release drops a reference; the last one stops the publisher, flushing
// what it still holds, and closes its connection.
func (c *publisherCache) release(p *publisher) {
	c.mu.Lock()
	p.refs--
	last := p.refs == 0
	if last {
		delete(c.m, p.key)
	}
	c.mu.Unlock()
	if last {
		p.p.Stop()
		_ = p.client.Close() // nothing is pending after Stop
	}
}
