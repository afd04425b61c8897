package mqttio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
)

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
	defer func() {
		b.s.setWatermark(b.we.Exact())
		release(b.s)
	}()

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
// broker's inflight window (of the current connection) may be full (so that the bundle commits and its
// messages get acknowledged), briefly while a bundle is under way, and up to
// the idle-watermark period when nothing has arrived yet.
func (b *bundle) pollWait() time.Duration {
	cfg := &b.fn.Cfg
	return cfg.PollWait(b.emitted, time.Since(b.started), b.unacked >= b.s.window)
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
	if err := b.s.neverConnected(); err != nil {
		return sdf.StopProcessing(), err
	}
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
		if b.fn.Cfg.QoS > 0 && !b.s.conn.limits().sessionPresent {
			log.Warnf(b.ctx, "mqttio: reader %s: the broker no longer had its session (it expired, or the broker lost it): "+
				"messages published while the reader was away were not kept for it", b.r.ClientID)
		}
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
	msg := d.msg
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

// finished reports whether a bounded read has reached its end.
func (b *bundle) finished() bool {
	return b.r.Finished(b.next)
}

// finish ends a bounded read whose messages have all been acknowledged.
// A reader that never connected fails (session.neverConnected).
func (b *bundle) finish() (sdf.ProcessContinuation, error) {
	sessions.Remove(b.s)
	b.s.Close()
	b.t.Stop()
	return sdf.StopProcessing(), b.s.neverConnected()
}
