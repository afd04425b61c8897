package pubsubio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/mqttbeam/mqttbeam/internal/resname"
	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

func init() {
	register.DoFn4x2[context.Context, *sdf.LockRTracker, []byte, func(beam.EventTime, Message), sdf.ProcessContinuation, error](&readFn{})
	register.Emitter2[beam.EventTime, Message]()
}

// Beam metrics of Read, in namespace "pubsubio".
var (
	messagesRead = beam.NewCounter("pubsubio", "messages_read")
	bytesRead    = beam.NewCounter("pubsubio", "bytes_read")
	redelivered  = beam.NewCounter("pubsubio", "redeliveries")
	acksSent     = beam.NewCounter("pubsubio", "acks")
)

// Read pulls from subscription, given as
// projects/PROJECT/subscriptions/SUBSCRIPTION, and returns an unbounded
// PCollection<Message>, one element per Pub/Sub message with its Data,
// Attributes, OrderingKey, ID and PublishTime, timestamped with its publish
// time.
//
// A message is acknowledged only after the bundle that emitted it has
// committed (see the package documentation); messages a reader never
// acknowledges are nacked when its session closes, or redelivered by Pub/Sub
// after their ack deadline when the worker dies. Options set parallel
// readers, bounded reads (MaxRecords, MaxReadTime), the watermark and the
// endpoint; see ReadOption and Option. Read panics when the subscription or an option is
// invalid; TryRead returns the error instead.
func Read(s beam.Scope, subscription string, opts ...ReadOption) beam.PCollection {
	out, err := TryRead(s, subscription, opts...)
	if err != nil {
		panic(err)
	}
	return out
}

// TryRead is Read returning an error instead of panicking.
func TryRead(s beam.Scope, subscription string, opts ...ReadOption) (beam.PCollection, error) {
	cfg, err := newReadConfig(opts)
	if err != nil {
		return beam.PCollection{}, err
	}
	if _, err := parseName(resname.SubscriptionRE, "subscription", subscription); err != nil {
		return beam.PCollection{}, err
	}
	s = s.Scope("pubsubio.Read")
	out, err := beam.TryParDo(s, &readFn{Subscription: subscription, Cfg: cfg}, beam.Impulse(s))
	if err != nil {
		return beam.PCollection{}, fmt.Errorf("pubsubio.Read: %w", err)
	}
	return out[0], nil
}

// readFn is the splittable DoFn behind Read. Its element is the impulse; its
// initial restriction is split into one restriction per reader.
type readFn struct {
	Subscription string
	Cfg          readConfig

	spec string
	// we is the watermark estimator the runner created for the restriction
	// being processed (see CreateWatermarkEstimator). It stays nil on the
	// direct runner, which runs splittable DoFns without estimators.
	we *streamread.WatermarkEstimator
}

// Setup fingerprints the read, so that a session is only reused by the same
// read.
func (fn *readFn) Setup() error {
	spec, err := json.Marshal(fn)
	if err != nil {
		return fmt.Errorf("pubsubio: fingerprinting the read: %w", err)
	}
	fn.spec = string(spec)
	return nil
}

// CreateInitialRestriction starts at offset 0, bounded by the options.
func (fn *readFn) CreateInitialRestriction(_ []byte) streamread.Restriction {
	return fn.Cfg.InitialRestriction()
}

// SplitRestriction gives each reader its own restriction and id.
func (fn *readFn) SplitRestriction(_ []byte, r streamread.Restriction) []streamread.Restriction {
	if r.ClientID != "" {
		return []streamread.Restriction{r}
	}
	rs := make([]streamread.Restriction, fn.Cfg.Readers)
	for i := range rs {
		rs[i] = r
		rs[i].ClientID = fmt.Sprintf("%s#%d", fn.Subscription, i)
	}
	return rs
}

// RestrictionSize is the backlog of the reader on this worker, and at least
// 1: an unbounded reader always has work ahead.
func (fn *readFn) RestrictionSize(_ []byte, r streamread.Restriction) float64 {
	return float64(max(backlog(r.ClientID, r.Start-1), 1))
}

// CreateTracker returns a tracker whose progress reports the messages
// waiting on this worker as the remaining work.
func (fn *readFn) CreateTracker(r streamread.Restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(streamread.NewTracker(r, func(claimed int64) int64 {
		return backlog(r.ClientID, claimed)
	}))
}

// TruncateRestriction ends the read when the pipeline drains.
func (fn *readFn) TruncateRestriction(rt *sdf.LockRTracker, _ []byte) streamread.Restriction {
	r := rt.GetRestriction().(streamread.Restriction)
	r.End = r.Start
	return r
}

// InitialWatermarkEstimatorState starts the watermark at the impulse's time.
func (fn *readFn) InitialWatermarkEstimatorState(et beam.EventTime, _ streamread.Restriction, _ []byte) int64 {
	return int64(et)
}

// CreateWatermarkEstimator creates the estimator for the restriction about to
// be processed and keeps it for ProcessElement, which advances it by hand.
func (fn *readFn) CreateWatermarkEstimator(state int64) *streamread.WatermarkEstimator {
	fn.we = streamread.NewWatermarkEstimator(state, fn.Cfg.WatermarkStep)
	return fn.we
}

// WatermarkEstimatorState returns the state to checkpoint.
func (fn *readFn) WatermarkEstimatorState(we *streamread.WatermarkEstimator) int64 {
	return we.State()
}

// ProcessElement runs one reader for one bundle: it acknowledges what earlier
// bundles committed, re-emits what a failed bundle had emitted, and emits new
// messages until it is time to checkpoint.
func (fn *readFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, _ []byte, emit func(beam.EventTime, Message)) (sdf.ProcessContinuation, error) {
	we := fn.we
	fn.we = nil
	b := &bundle{
		fn: fn, ctx: ctx, rt: rt, t: rt.Rt.(*streamread.Tracker),
		r: rt.GetRestriction().(streamread.Restriction), we: we, emit: emit, started: time.Now(),
	}
	if we == nil && b.r.Limit <= 0 && b.r.Deadline <= 0 {
		return sdf.StopProcessing(), errors.New("pubsubio: this runner does not resume splittable DoFns (the direct runner), so it can only run a bounded read " +
			"(MaxRecords or MaxReadTime); run unbounded reads on prism (--runner=prism, the default) or Dataflow")
	}
	if err := b.acquire(); err != nil {
		return sdf.StopProcessing(), err
	}
	if we == nil {
		return b.runToEnd()
	}
	defer release(b.s)
	return b.run()
}

// bundle is the state of one ProcessElement call.
type bundle struct {
	fn      *readFn
	ctx     context.Context
	rt      *sdf.LockRTracker
	t       *streamread.Tracker
	r       streamread.Restriction
	we      *streamread.WatermarkEstimator
	emit    func(beam.EventTime, Message)
	s       *session
	started time.Time

	next    int64 // the next offset to claim
	emitted int
}

// acquire takes the reader's session and acknowledges what the bundles
// before this one committed.
func (b *bundle) acquire() error {
	s, err := acquire(b.ctx, b.r.ClientID, b.fn.Subscription, b.fn.spec, b.r.Start, &b.fn.Cfg)
	if err != nil {
		return fmt.Errorf("pubsubio.Read: %w", err)
	}
	b.s, b.next = s, b.r.Start
	if n := s.ackBelow(b.r.Start); n > 0 {
		acksSent.Inc(b.ctx, int64(n))
	}
	return nil
}

// run is the normal, resumable path (prism, Dataflow).
func (b *bundle) run() (sdf.ProcessContinuation, error) {
	if b.r.Finished(b.next) {
		return b.finish()
	}
	// Re-emit what a failed attempt of this bundle had emitted.
	for m, ok := b.s.log.At(b.next); ok; m, ok = b.s.log.At(b.next) {
		if !b.claimAndEmit(m) {
			return sdf.StopProcessing(), b.t.GetError()
		}
	}
	cfg := &b.fn.Cfg
	for {
		if b.r.Finished(b.next) {
			if b.emitted > 0 {
				return sdf.ResumeProcessingIn(0), nil // acknowledge, then finish
			}
			return b.finish()
		}
		if b.emitted >= cfg.MaxBundleSize || time.Since(b.started) >= cfg.MaxBundleTime {
			return sdf.ResumeProcessingIn(0), nil
		}
		m, ok := b.s.next(b.ctx, b.pollWait())
		if ok {
			b.s.log.Append(m)
			if !b.claimAndEmit(m) {
				return sdf.StopProcessing(), b.t.GetError()
			}
			continue
		}
		if err := b.failed(); err != nil {
			return sdf.StopProcessing(), err
		}
		if b.emitted == 0 {
			b.idle()
		}
		return sdf.ResumeProcessingIn(0), nil
	}
}

// pollWait is how long to wait for the next message: briefly while a bundle
// is under way, up to the idle-watermark period when nothing has arrived yet.
func (b *bundle) pollWait() time.Duration {
	return b.fn.Cfg.PollWait(b.emitted, time.Since(b.started), false)
}

// failed returns the error that ended the reader's streaming pull (a missing
// subscription, a permission denied), dropping the broken session so that a
// retry starts a new one.
func (b *bundle) failed() error {
	err := b.s.failed()
	if err == nil {
		return nil
	}
	sessions.Remove(b.s)
	go b.s.Close()
	return fmt.Errorf("pubsubio.Read: %w", err)
}

// runToEnd is the path for runners that do not resume splittable DoFns (the
// direct runner), which ProcessElement only takes for bounded reads: the read runs to its end in this one call,
// acknowledging each message once the steps fused after the read have
// processed it.
func (b *bundle) runToEnd() (sdf.ProcessContinuation, error) {
	defer func() {
		sessions.Remove(b.s)
		b.s.Close()
		release(b.s)
	}()
	for !b.r.Finished(b.next) {
		if err := b.ctx.Err(); err != nil {
			return sdf.StopProcessing(), err
		}
		m, ok := b.s.next(b.ctx, b.fn.Cfg.IdleWatermark)
		if !ok {
			if err := b.failed(); err != nil {
				return sdf.StopProcessing(), err
			}
			continue
		}
		b.s.log.Append(m)
		if !b.claimAndEmit(m) {
			break
		}
		if n := b.s.ackBelow(b.next); n > 0 {
			acksSent.Inc(b.ctx, int64(n))
		}
	}
	b.t.Stop()
	return sdf.StopProcessing(), b.t.GetError()
}

// claimAndEmit claims the next offset for m and emits it.
func (b *bundle) claimAndEmit(m *pubsub.Message) bool {
	if !b.rt.TryClaim(b.next) {
		return false
	}
	b.next++
	msg := Message{
		Data:        m.Data,
		Attributes:  m.Attributes,
		OrderingKey: m.OrderingKey,
		ID:          m.ID,
		PublishTime: m.PublishTime,
	}
	b.emit(mtime.FromTime(msg.PublishTime), msg)
	b.emitted++
	if b.we != nil {
		b.we.Advance(msg.PublishTime.Add(-b.fn.Cfg.MaxOutOfOrderness))
	}
	messagesRead.Inc(b.ctx, 1)
	bytesRead.Inc(b.ctx, int64(len(msg.Data)))
	if m.DeliveryAttempt != nil && *m.DeliveryAttempt > 1 {
		redelivered.Inc(b.ctx, 1)
	}
	return true
}

// idle advances the watermark while no message arrives: a message published
// from now on has a later publish time (up to the clock difference between
// the worker and Pub/Sub, which MaxOutOfOrderness should cover).
func (b *bundle) idle() {
	if b.we != nil && len(b.s.queue) == 0 {
		b.we.Advance(time.Now().Add(-b.fn.Cfg.MaxOutOfOrderness))
	}
}

// finish ends a bounded read whose messages have all been acknowledged.
func (b *bundle) finish() (sdf.ProcessContinuation, error) {
	sessions.Remove(b.s)
	b.s.Close()
	b.t.Stop()
	return sdf.StopProcessing(), nil
}
