package mqttio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/mqttbeam/mqttbeam/internal/drain"
	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

func init() {
	register.DoFn4x2[context.Context, *sdf.LockRTracker, []byte, func(beam.EventTime, Message), sdf.ProcessContinuation, error](&readFn{})
	register.Emitter2[beam.EventTime, Message]()
	beam.RegisterType(reflect.TypeOf((*watermarkEstimator)(nil)).Elem())
}

// Beam metrics of Read, in namespace "mqttio".
var (
	messagesRead  = beam.NewCounter("mqttio", "messages_read")
	bytesRead     = beam.NewCounter("mqttio", "bytes_read")
	redeliveries  = beam.NewCounter("mqttio", "redeliveries")
	acksSent      = beam.NewCounter("mqttio", "acks")
	reconnects    = beam.NewCounter("mqttio", "reconnects")
	connectErrors = beam.NewCounter("mqttio", "connect_errors")
	payloadSize   = beam.NewDistribution("mqttio", "payload_bytes")
)

// Read subscribes to the topic filters on the brokers and returns an
// unbounded PCollection<Message>, one element per MQTT message, timestamped
// with its receive time (or the time the EventTime option extracts).
//
// brokers are URLs of one cluster (tcp://, mqtt://, ssl://, tls://, mqtts://,
// ws://, wss://), tried in order when connecting; filters may use the '+' and
// '#' wildcards. Options configure QoS (default 1), parallel readers, client
// id, security, event time and bounded reads; see Option. Read panics when the
// arguments or options are invalid; TryRead returns the error instead.
func Read(s beam.Scope, brokers, filters []string, opts ...Option) beam.PCollection {
	out, err := TryRead(s, brokers, filters, opts...)
	if err != nil {
		panic(err)
	}
	return out
}

// TryRead is Read returning an error instead of panicking.
func TryRead(s beam.Scope, brokers, filters []string, opts ...Option) (beam.PCollection, error) {
	fn, err := newReadFn(brokers, filters, opts)
	if err != nil {
		return beam.PCollection{}, err
	}
	s = s.Scope("mqttio.Read")
	out, err := beam.TryParDo(s, fn, beam.Impulse(s))
	if err != nil {
		return beam.PCollection{}, fmt.Errorf("mqttio.Read: %w", err)
	}
	return out[0], nil
}

// readFn is the splittable DoFn behind Read. Its element is the impulse; its
// initial restriction is split into one restriction per reader.
type readFn struct {
	Brokers []string
	Filters []string
	Cfg     config

	eventTime func(Message) (time.Time, bool)
	spec      string
	// we is the watermark estimator the runner created for the restriction
	// being processed (see CreateWatermarkEstimator). It stays nil on the
	// direct runner, which runs splittable DoFns without estimators.
	we *watermarkEstimator
}

func newReadFn(brokers, filters []string, opts []Option) (*readFn, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	bs, err := parseBrokers(brokers)
	if err != nil {
		return nil, err
	}
	if len(filters) == 0 {
		return nil, errors.New("mqttio: no topic filter given")
	}
	for _, f := range filters {
		if err := ValidateFilter(f); err != nil {
			return nil, fmt.Errorf("mqttio: topic filter: %w", err)
		}
	}
	if cfg.ClientID == "" {
		sum := sha256.Sum256([]byte(strings.Join(filters, "\x00") + "\x01" + cfg.Group))
		cfg.ClientID = "mqttbeam-" + hex.EncodeToString(sum[:4])
	}
	if cfg.Group == "" {
		cfg.Group = cfg.ClientID
	}
	if cfg.Readers > 1 {
		if err := checkTopicLevel(cfg.Group); err != nil {
			return nil, fmt.Errorf("mqttio: shared-subscription group (SharedGroup, or the client id): %w", err)
		}
	}
	if _, err := cfg.eventTimeFunc(); err != nil {
		return nil, err
	}
	return &readFn{Brokers: bs, Filters: slices.Clone(filters), Cfg: cfg}, nil
}

// Setup prepares what does not travel with the DoFn.
func (fn *readFn) Setup() error {
	et, err := fn.Cfg.eventTimeFunc()
	if err != nil {
		return err
	}
	fn.eventTime = et
	spec, err := json.Marshal(fn)
	if err != nil {
		return fmt.Errorf("mqttio: fingerprinting the read: %w", err)
	}
	fn.spec = string(spec)
	return nil
}

// subscriptions maps each filter to its subscription: a shared one when
// there is more than one reader.
func (fn *readFn) subscriptions() map[string]byte {
	subs := make(map[string]byte, len(fn.Filters))
	for _, f := range fn.Filters {
		if fn.Cfg.Readers > 1 && !strings.HasPrefix(f, "$share/") {
			f = "$share/" + fn.Cfg.Group + "/" + f
		}
		subs[f] = fn.Cfg.QoS
	}
	return subs
}

func (fn *readFn) CreateInitialRestriction(_ []byte) restriction {
	r := restriction{Start: 0, End: math.MaxInt64, Limit: fn.Cfg.MaxRecords}
	if fn.Cfg.MaxReadTime > 0 {
		r.Deadline = time.Now().Add(fn.Cfg.MaxReadTime).UnixMilli()
	}
	return r
}

// SplitRestriction gives each reader its own restriction and client id.
func (fn *readFn) SplitRestriction(_ []byte, r restriction) []restriction {
	if r.ClientID != "" {
		return []restriction{r}
	}
	rs := make([]restriction, fn.Cfg.Readers)
	for i := range rs {
		rs[i] = r
		rs[i].ClientID = fmt.Sprintf("%s-%d", fn.Cfg.ClientID, i)
	}
	return rs
}

// RestrictionSize is the backlog of the reader on this worker, and at least
// 1: an unbounded reader always has work ahead (a size of 0 would read as
// "nothing to do" to a runner).
func (fn *readFn) RestrictionSize(_ []byte, r restriction) float64 {
	return float64(max(backlog(r.ClientID, r.Start-1), 1))
}

func (fn *readFn) CreateTracker(r restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(streamread.NewTracker(r, func(claimed int64) int64 {
		return backlog(r.ClientID, claimed)
	}))
}

// TruncateRestriction ends the read when the pipeline drains.
func (fn *readFn) TruncateRestriction(rt *sdf.LockRTracker, _ []byte) restriction {
	r := rt.GetRestriction().(restriction)
	r.End = r.Start
	return r
}

func (fn *readFn) InitialWatermarkEstimatorState(et beam.EventTime, _ restriction, _ []byte) int64 {
	return int64(et)
}

// CreateWatermarkEstimator creates the estimator for the restriction about to
// be processed and keeps it for ProcessElement, which advances it by hand.
func (fn *readFn) CreateWatermarkEstimator(state int64) *watermarkEstimator {
	fn.we = streamread.NewWatermarkEstimator(state, fn.Cfg.WatermarkStep)
	return fn.we
}

func (fn *readFn) WatermarkEstimatorState(we *watermarkEstimator) int64 {
	return we.State()
}

// ProcessElement runs one reader for one bundle: it acknowledges what earlier
// bundles committed, re-emits what a failed bundle had emitted, and emits new
// messages until it is time to checkpoint.
func (fn *readFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, _ []byte, emit func(beam.EventTime, Message)) (sdf.ProcessContinuation, error) {
	we := fn.we
	fn.we = nil
	r := rt.GetRestriction().(restriction)
	t := rt.Rt.(*tracker)
	b := &bundle{fn: fn, ctx: ctx, rt: rt, t: t, r: r, we: we, emit: emit, started: time.Now()}
	if we == nil {
		return b.runToEnd()
	}
	return b.run()
}

// bundle is the state of one ProcessElement call.
type bundle struct {
	fn      *readFn
	ctx     context.Context
	rt      *sdf.LockRTracker
	t       *tracker
	r       restriction
	we      *watermarkEstimator
	emit    func(beam.EventTime, Message)
	s       *session
	started time.Time

	next    int64 // the next offset to claim
	emitted int
	unacked int // QoS > 0 messages emitted by this bundle
}

func (b *bundle) acquire() {
	cfg := &b.fn.Cfg
	b.s = acquire(b.r.ClientID, b.fn.spec, b.r.Start, b.fn.Brokers, b.fn.subscriptions(), cfg)
	b.next = b.r.Start
	if n := b.s.ackBelow(b.r.Start); n > 0 {
		acksSent.Inc(b.ctx, int64(n))
	}
}

// run is the normal, resumable path (prism, Dataflow).
func (b *bundle) run() (sdf.ProcessContinuation, error) {
	b.acquire()
	defer release(b.s)

	if b.finished() {
		return b.finish()
	}
	if cont, err := b.connect(); cont != nil || err != nil {
		return cont, err
	}
	// Re-emit what a failed attempt of this bundle had emitted.
	for d, ok := b.s.log.At(b.next); ok; d, ok = b.s.log.At(b.next) {
		if !b.claimAndEmit(d) {
			return sdf.StopProcessing(), b.t.GetError()
		}
	}
	cfg := &b.fn.Cfg
	for {
		if b.finished() {
			if b.emitted > 0 {
				return sdf.ResumeProcessingIn(0), nil // acknowledge, then finish
			}
			return b.finish()
		}
		if b.emitted >= cfg.MaxBundleSize || time.Since(b.started) >= cfg.MaxBundleTime {
			return sdf.ResumeProcessingIn(0), nil
		}
		d, ok := b.s.next(b.ctx, b.pollWait())
		if ok {
			b.s.log.Append(d)
			if !b.claimAndEmit(d) {
				return sdf.StopProcessing(), b.t.GetError()
			}
			continue
		}
		if b.emitted > 0 {
			return sdf.ResumeProcessingIn(0), nil
		}
		if up, _ := b.s.isConnected(); !up {
			return sdf.ResumeProcessingIn(0), nil // reconnect in the next bundle
		}
		if err := b.s.subscribed(); err != nil {
			return sdf.StopProcessing(), fmt.Errorf("mqttio.Read: %w", err)
		}
		b.idle()
		return sdf.ResumeProcessingIn(0), nil
	}
}

// pollWait is how long to wait for the next message: not at all once the
// broker's inflight window may be full (so that the bundle commits and its
// messages get acknowledged), briefly while a bundle is under way, and up to
// the idle-watermark period when nothing has arrived yet.
func (b *bundle) pollWait() time.Duration {
	cfg := &b.fn.Cfg
	switch {
	case b.unacked >= cfg.InflightWindow:
		return 0
	case b.emitted > 0:
		return min(5*time.Millisecond, cfg.MaxBundleTime-time.Since(b.started))
	default:
		return min(cfg.IdleWatermark, cfg.MaxBundleTime*4)
	}
}

// runToEnd is the path for runners that do not resume splittable DoFns (the
// direct runner): a bounded read runs to its end in this one call,
// acknowledging each message once the steps fused after the read have
// processed it.
func (b *bundle) runToEnd() (sdf.ProcessContinuation, error) {
	if b.r.Limit <= 0 && b.r.Deadline <= 0 {
		return sdf.StopProcessing(), errors.New("mqttio: this runner does not resume splittable DoFns (the direct runner), so it can only run a bounded read " +
			"(MaxRecords or MaxReadTime); run unbounded reads on prism (--runner=prism, the default) or Dataflow")
	}
	b.acquire()
	defer func() {
		sessions.Remove(b.s)
		b.s.Close()
		release(b.s)
	}()
	for !b.finished() {
		if err := b.ctx.Err(); err != nil {
			return sdf.StopProcessing(), err
		}
		if _, err := b.connect(); err != nil {
			return sdf.StopProcessing(), err
		}
		d, ok := b.s.next(b.ctx, b.fn.Cfg.IdleWatermark)
		if !ok {
			if err := b.s.subscribed(); err != nil {
				return sdf.StopProcessing(), fmt.Errorf("mqttio.Read: %w", err)
			}
			if up, _ := b.s.isConnected(); up {
				continue
			}
			if err := b.backoff(); err != nil {
				return sdf.StopProcessing(), err
			}
			continue
		}
		b.s.log.Append(d)
		if !b.claimAndEmit(d) {
			break
		}
		if n := b.s.ackBelow(b.next); n > 0 {
			acksSent.Inc(b.ctx, int64(n))
		}
	}
	b.t.Stop()
	return sdf.StopProcessing(), b.t.GetError()
}

// backoff waits until the session may try to connect again.
func (b *bundle) backoff() error {
	b.s.mu.Lock()
	wait := time.Until(b.s.nextTry)
	b.s.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

// connect makes sure the session is connected. A failure that retrying can
// fix makes the bundle resume later; one it cannot fix fails the bundle.
func (b *bundle) connect() (sdf.ProcessContinuation, error) {
	reconnected, err := b.s.ensureConnected(b.ctx)
	if reconnected && err == nil {
		reconnects.Inc(b.ctx, 1)
		log.Infof(b.ctx, "mqttio: reader %s reconnected", b.r.ClientID)
	}
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, errRetryLater):
		b.idle()
		return sdf.ResumeProcessingIn(100 * time.Millisecond), nil
	case isPermanent(err):
		return sdf.StopProcessing(), fmt.Errorf("mqttio.Read: %w", err)
	default:
		connectErrors.Inc(b.ctx, 1)
		log.Warnf(b.ctx, "mqttio: reader %s: %v (will retry)", b.r.ClientID, err)
		if b.we == nil {
			return nil, nil // runToEnd backs off itself
		}
		b.idle()
		return sdf.ResumeProcessingIn(100 * time.Millisecond), nil
	}
}

// claimAndEmit claims the next offset for d and emits it.
func (b *bundle) claimAndEmit(d delivery) bool {
	if !b.rt.TryClaim(b.next) {
		return false
	}
	b.next++
	m := d.msg
	msg := Message{
		Topic:      m.Topic(),
		Payload:    m.Payload(),
		QoS:        m.Qos(),
		Retained:   m.Retained(),
		Duplicate:  m.Duplicate(),
		ReceivedAt: d.received,
	}
	et := msg.ReceivedAt
	if b.fn.eventTime != nil {
		if t, ok := b.fn.eventTime(msg); ok {
			et = t
		}
	}
	b.emit(mtime.FromTime(et), msg)
	b.emitted++
	if msg.QoS > 0 {
		b.unacked++
	}
	if b.we != nil {
		b.we.Advance(et.Add(-b.fn.Cfg.MaxOutOfOrderness))
	}
	messagesRead.Inc(b.ctx, 1)
	bytesRead.Inc(b.ctx, int64(len(msg.Payload)))
	payloadSize.Update(b.ctx, int64(len(msg.Payload)))
	if msg.Duplicate {
		redeliveries.Inc(b.ctx, 1)
	}
	return true
}

// idle advances the watermark while no message arrives: any message received
// from now on has a receive time after now.
func (b *bundle) idle() {
	if b.we != nil && b.s != nil && len(b.s.queue) == 0 {
		b.we.Advance(time.Now().Add(-b.fn.Cfg.MaxOutOfOrderness))
	}
}

// Drain makes every Read running in this process end as a bounded read ends
// at its limit: it stops taking messages, waits until the runner has
// committed what it emitted, acknowledges it and returns, so the pipeline
// finishes and its final windows fire. It is meant for local runs (prism, the
// direct runner), where the pipeline runs in the caller's process, e.g. on
// Ctrl-C. Reads started afterwards in the same process end at once. It also
// ends the registry refresh of enrich.Join, the other unbounded source of the
// project's pipelines.
func Drain() {
	drain.Request()
}

// finished reports whether a bounded read has reached its end.
func (b *bundle) finished() bool {
	return b.r.Finished(b.next)
}

// finish ends a bounded read whose messages have all been acknowledged.
func (b *bundle) finish() (sdf.ProcessContinuation, error) {
	sessions.Remove(b.s)
	b.s.Close()
	b.t.Stop()
	return sdf.StopProcessing(), nil
}
