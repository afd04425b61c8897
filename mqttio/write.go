package mqttio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn4x1[context.Context, beam.EventTime, Publication, func(beam.EventTime, PublishError), error](&writeFn{})
	register.Emitter2[beam.EventTime, PublishError]()
}

// Beam metrics of Write, in namespace "mqttio".
var (
	messagesPublished = beam.NewCounter("mqttio", "messages_published")
	bytesPublished    = beam.NewCounter("mqttio", "bytes_published")
	publishRetries    = beam.NewCounter("mqttio", "publish_retries")
	publishRejected   = beam.NewCounter("mqttio", "publish_rejected")
)

// defaultWriterID is the client id prefix of writers without ClientID.
const defaultWriterID = "mqttbeam-w"

// Write publishes each Publication of col (a PCollection<Publication>) to the
// brokers and returns a PCollection<PublishError> of the elements it refused,
// each with the reason.
//
// The topic is Publication.Topic, or, with the TopicTemplate option, the
// template filled from Publication.Fields (Topic is then ignored). An element
// whose topic is invalid (empty, an empty level, a wildcard '+' or '#', NUL,
// a leading '$', longer than 65535 bytes) or whose field values would change
// the template's shape (missing, empty, or containing '/', '+', '#' or NUL)
// goes to the returned PCollection instead of failing the job. So does, with
// MQTT 5, a publish the broker refuses (its reason code in the PublishError)
// or would refuse for its size (larger than the maximum packet size of its
// CONNACK). A PublishError keeps its Publication's timestamp; one found when
// the bundle finishes is in the global window.
//
// Publishes are pipelined: up to MaxPending (default 1000) are in flight at a
// time, and the bundle ends once the broker has acknowledged all of them
// (QoS 1 and 2; QoS 0 publishes count once written). A publish that fails or
// is not acknowledged within the PublishRetry wait is published again, with
// exponential backoff, up to the PublishRetry tries; then the bundle fails and
// the runner retries it, so a publish can be delivered more than once. A
// connection the broker refuses for good (bad credentials, an untrusted
// certificate) fails the bundle at once.
//
// Each worker process keeps one connection per set of connection settings,
// shared by the bundles running on it and closed after SessionIdle unused.
// Its client id is the ClientID option (default "mqttbeam-w") followed by a
// random suffix chosen once per process, so that workers do not take each
// other's connections over.
//
// Write panics when the arguments or options are invalid; TryWrite returns
// the error instead.
func Write(s beam.Scope, brokers []string, col beam.PCollection, opts ...WriteOption) beam.PCollection {
	out, err := TryWrite(s, brokers, col, opts...)
	if err != nil {
		panic(err)
	}
	return out
}

// TryWrite is Write returning an error instead of panicking.
func TryWrite(s beam.Scope, brokers []string, col beam.PCollection, opts ...WriteOption) (beam.PCollection, error) {
	fn, err := newWriteFn(brokers, opts)
	if err != nil {
		return beam.PCollection{}, &writeError{err}
	}
	want := reflect.TypeOf(Publication{})
	if !col.IsValid() || col.Type().Type() != want {
		got := "an invalid PCollection"
		if col.IsValid() {
			got = fmt.Sprintf("PCollection<%v>", col.Type().Type())
		}
		return beam.PCollection{}, fmt.Errorf("mqttio.Write: the input must be a PCollection<%v>, got %s", want, got)
	}
	s = s.Scope("mqttio.Write")
	out, err := beam.TryParDo(s, fn, col)
	if err != nil {
		return beam.PCollection{}, fmt.Errorf("mqttio.Write: %w", err)
	}
	return out[0], nil
}

// writeError prefixes a construction error with "mqttio.Write" in place of
// the "mqttio" prefix the shared option and broker checks give it.
type writeError struct{ err error }

func (e *writeError) Error() string {
	return "mqttio.Write: " + strings.TrimPrefix(e.err.Error(), "mqttio: ")
}

func (e *writeError) Unwrap() error { return e.err }

func newWriteFn(brokers []string, opts []WriteOption) (*writeFn, error) {
	cfg, err := newWriteConfig(opts)
	if err != nil {
		return nil, err
	}
	bs, err := parseBrokers(brokers)
	if err != nil {
		return nil, err
	}
	return &writeFn{Brokers: bs, Cfg: cfg}, nil
}

// writeFn is the DoFn behind Write.
type writeFn struct {
	Brokers []string
	Cfg     writeConfig

	tmpl *template // nil without TopicTemplate
	key  string    // the connection settings, keying the worker's writer cache

	// The current bundle's connection, from its first element on.
	w    *writer
	conn brokerConn

	pending   pendingQueue
	timer     *time.Timer
	backedOff time.Time // when the last retry backoff ended
	published int64     // acknowledged in this bundle
	bytes     int64
}

// pendingPub is a publish awaiting the broker's acknowledgement.
type pendingPub struct {
	tok   token
	topic string
	pub   Publication
	at    beam.EventTime
	sent  time.Time
	tries int
}

// pendingQueue is a fixed-size FIFO of publishes, allocated once per DoFn.
type pendingQueue struct {
	buf     []pendingPub
	head, n int
}

// push queues p and returns where it is, for the publish to refer to.
func (q *pendingQueue) push(p pendingPub) *pendingPub {
	slot := &q.buf[(q.head+q.n)%len(q.buf)]
	*slot = p
	q.n++
	return slot
}

func (q *pendingQueue) pop() pendingPub {
	p := q.buf[q.head]
	q.buf[q.head] = pendingPub{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return p
}

func (q *pendingQueue) reset() {
	clear(q.buf)
	q.head, q.n = 0, 0
}

// Setup prepares what does not travel with the DoFn.
func (fn *writeFn) Setup() error {
	if fn.Cfg.TopicTemplate != "" {
		t, err := parseTemplate(fn.Cfg.TopicTemplate)
		if err != nil {
			return fmt.Errorf("mqttio.Write: TopicTemplate: %w", err)
		}
		fn.tmpl = &t
	}
	key, err := connectionKey(fn.Brokers, &fn.Cfg)
	if err != nil {
		return err
	}
	fn.key = key
	fn.pending = pendingQueue{buf: make([]pendingPub, fn.Cfg.MaxPending)}
	fn.timer = time.NewTimer(time.Hour)
	fn.timer.Stop()
	return nil
}

// connectionKey fingerprints the settings a writer connection depends on.
// Writes with the same key share a connection.
func connectionKey(brokers []string, c *writeConfig) (string, error) {
	b, err := json.Marshal(struct {
		Brokers                   []string
		ClientID, User, Password  string
		PasswordRef               string
		TLS                       tlsConfig
		KeepAlive, ConnectTimeout time.Duration
		Protocol                  byte
		AuthMethod                string
	}{brokers, c.ClientID, c.Username, c.Password, c.PasswordRef, c.TLS, c.KeepAlive, c.ConnectTimeout, c.Protocol, c.AuthMethod})
	if err != nil {
		return "", fmt.Errorf("mqttio.Write: fingerprinting the connection: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// StartBundle drops what a failed earlier bundle may have left behind. (Beam
// wants the emitter of ProcessElement here too; it is not used.)
func (fn *writeFn) StartBundle(_ context.Context, _ func(beam.EventTime, PublishError)) {
	fn.abort()
	fn.published, fn.bytes = 0, 0
}

// ProcessElement publishes p, or emits it as a PublishError when its topic is
// invalid. It waits only when MaxPending publishes are in flight.
func (fn *writeFn) ProcessElement(ctx context.Context, at beam.EventTime, p Publication, reject func(beam.EventTime, PublishError)) error {
	topic, err := fn.topic(&p)
	if err != nil {
		publishRejected.Inc(ctx, 1)
		reject(at, PublishError{Publication: p, Reason: "invalid topic: " + err.Error()})
		return nil
	}
	if fn.conn == nil {
		if err := fn.acquire(ctx); err != nil {
			return err
		}
	}
	if fn.pending.n == len(fn.pending.buf) {
		if err := fn.drain(ctx, fn.pending.n-1, reject); err != nil {
			fn.abort()
			return err
		}
	}
	fn.publish(ctx, pendingPub{topic: topic, pub: p, at: at, tries: 1})
	return nil
}

// FinishBundle waits until the broker has acknowledged every publish of the
// bundle.
func (fn *writeFn) FinishBundle(ctx context.Context, reject func(beam.EventTime, PublishError)) error {
	if fn.w == nil {
		return nil
	}
	err := fn.drain(ctx, 0, reject)
	messagesPublished.Inc(ctx, fn.published)
	bytesPublished.Inc(ctx, fn.bytes)
	fn.abort()
	return err
}

// Teardown lets go of a connection a failed bundle still holds.
func (fn *writeFn) Teardown() {
	fn.abort()
}

func (fn *writeFn) topic(p *Publication) (string, error) {
	if fn.tmpl != nil {
		return fn.tmpl.Expand(p.Fields)
	}
	return p.Topic, ValidateTopic(p.Topic)
}

// acquire takes the worker's connection for this bundle.
func (fn *writeFn) acquire(ctx context.Context) error {
	w := writers.acquire(fn.key, fn.idBase(), func(id string) *writer { return newWriter(id, fn.key, fn.Brokers, fn.Cfg) })
	conn, err := w.connect(ctx)
	if err != nil {
		writers.release(w)
		return fmt.Errorf("mqttio.Write: %w", err)
	}
	fn.w, fn.conn = w, conn
	return nil
}

func (fn *writeFn) idBase() string {
	if fn.Cfg.ClientID != "" {
		return fn.Cfg.ClientID
	}
	return defaultWriterID
}

// abort forgets the bundle's pending publishes and releases its connection.
func (fn *writeFn) abort() {
	fn.pending.reset()
	if fn.w != nil {
		writers.release(fn.w)
		fn.w, fn.conn = nil, nil
	}
}

func (fn *writeFn) publish(ctx context.Context, p pendingPub) {
	p.sent = time.Now()
	slot := fn.pending.push(p)
	slot.tok = fn.conn.publish(ctx, slot.topic, fn.Cfg.QoS, fn.Cfg.Retain, &slot.pub)
}

// drain waits for the oldest publishes until at most keep are pending,
// publishing failed ones again until they run out of tries, on a new
// connection when the connection was lost. The backoff is shared: publishes
// that failed together (a lost connection) are retried together after one
// backoff. A publish the broker refused goes to reject.
func (fn *writeFn) drain(ctx context.Context, keep int, reject func(beam.EventTime, PublishError)) error {
	for fn.pending.n > keep {
		p := fn.pending.pop()
		err := fn.await(ctx, &p)
		var refused *refusedError
		switch {
		case err == nil:
			fn.published++
			fn.bytes += int64(len(p.pub.Payload))
			continue
		case errors.As(err, &refused):
			publishRejected.Inc(ctx, 1)
			reject(p.at, PublishError{Publication: p.pub, Reason: err.Error(), ReasonCode: refused.code})
			continue
		case ctx.Err() != nil:
			return fmt.Errorf("mqttio.Write: waiting for the broker to acknowledge a publish to topic %q: %w", p.topic, ctx.Err())
		case p.tries >= fn.Cfg.PublishTries:
			return fn.w.publishFailed(p.topic, p.tries, err)
		}
		if fn.backedOff.Before(p.sent) {
			if err := sleep(ctx, retryBackoff(p.tries)); err != nil {
				return fmt.Errorf("mqttio.Write: retrying a publish to topic %q: %w", p.topic, err)
			}
			fn.backedOff = time.Now()
		}
		conn, err := fn.w.connect(ctx)
		if err != nil {
			return fmt.Errorf("mqttio.Write: reconnecting to retry a publish to topic %q: %w", p.topic, err)
		}
		fn.conn = conn
		publishRetries.Inc(ctx, 1)
		p.tries++
		fn.publish(ctx, p)
	}
	return nil
}

// await waits for p's acknowledgement until PublishWait after it was sent.
func (fn *writeFn) await(ctx context.Context, p *pendingPub) error {
	select {
	case <-p.tok.Done():
		return p.tok.Error()
	default:
	}
	d := time.Until(p.sent.Add(fn.Cfg.PublishWait))
	if d <= 0 {
		return fn.noAck()
	}
	fn.timer.Reset(d)
	defer fn.timer.Stop()
	select {
	case <-p.tok.Done():
		return p.tok.Error()
	case <-fn.timer.C:
		return fn.noAck()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (fn *writeFn) noAck() error {
	return fmt.Errorf("no acknowledgement from the broker within %v", fn.Cfg.PublishWait)
}

// retryBackoff is the pause before attempt tries+1: 100ms doubling up to 10s,
// of which a random half is taken off so that workers spread their retries.
func retryBackoff(tries int) time.Duration {
	d := min(100*time.Millisecond<<min(tries-1, 7), 10*time.Second)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
