package aggregate

import "time"

// maxStep bounds WatermarkStep: a watermark that moved once an hour would
// make a job look stalled and hold every event-time timer for that long.
const maxStep = time.Minute

// WatermarkStep returns the longest step, at most a minute, that every
// window end and every window expiry (end plus allowed lateness) of the
// options falls on (fixed and sliding windows; windows start at multiples
// of their period since the Unix epoch). A source whose watermark moves in
// whole steps of it (mqttio.WatermarkStep, pubsubio.WatermarkStep) closes
// these windows as early as with an exact watermark, and changes the
// watermark of the stages downstream far less often, which is what prism's
// GroupByKey pays for (see mqttio.WatermarkStep). Session windows end
// anywhere: for them it is at most a second, what a session may then close
// late by.
func WatermarkStep(opts ...Option) (time.Duration, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return 0, err
	}
	step := maxStep
	switch cfg.Kind {
	case kindSliding:
		step = gcd(gcd(step, cfg.Size), cfg.Period)
	case kindSession:
		step = gcd(time.Second, cfg.Gap)
	default:
		step = gcd(step, cfg.Size)
	}
	return gcd(step, cfg.AllowedLateness), nil
}

// gcd is the greatest common divisor of a and b (a when b is 0).
func gcd(a, b time.Duration) time.Duration {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
