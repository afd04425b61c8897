package main

import (
	"math"
	"sync/atomic"
	"syscall"
	"time"
)

// Payloads: a data message is 'd', its sequence number in seqDigits decimal
// digits, ':' and padding up to the payload size; a probe is 'p' and its
// index in seqDigits digits. Both kinds travel on the same topic.
const (
	seqDigits  = 9
	maxSeq     = 1_000_000_000
	minPayload = seqDigits + 2
)

func dataPayload(seq, size int) []byte {
	b := make([]byte, size)
	b[0] = 'd'
	putSeq(b[1:1+seqDigits], seq)
	b[1+seqDigits] = ':'
	for i := 2 + seqDigits; i < size; i++ {
		b[i] = 'x'
	}
	return b
}

func probePayload(i int) []byte {
	b := make([]byte, 1+seqDigits)
	b[0] = 'p'
	putSeq(b[1:], i)
	return b
}

func putSeq(b []byte, n int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
}

// parsePayload returns the kind ('d', 'p', or 0 for anything else) and the
// sequence number of a payload.
func parsePayload(b []byte) (kind byte, seq int) {
	if len(b) < 1+seqDigits || (b[0] != 'd' && b[0] != 'p') {
		return 0, 0
	}
	for _, c := range b[1 : 1+seqDigits] {
		if c < '0' || c > '9' {
			return 0, 0
		}
		seq = seq*10 + int(c-'0')
	}
	return b[0], seq
}

// counter tallies the messages a subscriber (a paho handler or the pipeline's
// counting DoFn) sees. It is safe for concurrent use.
type counter struct {
	n    int
	seen []uint32 // bit set of the data sequence numbers seen

	data     atomic.Int64 // data messages, duplicates included
	unique   atomic.Int64
	dups     atomic.Int64
	other    atomic.Int64 // payloads that are neither data nor probe, or out of range
	probes   atomic.Int64
	minProbe atomic.Int64
	first    atomic.Int64 // UnixNano of the first data message
	last     atomic.Int64 // UnixNano of the latest data message
}

func newCounter(n int) *counter {
	c := &counter{n: n, seen: make([]uint32, (n+31)/32)}
	c.minProbe.Store(math.MaxInt64)
	return c
}

func (c *counter) observe(payload []byte, now time.Time) {
	kind, seq := parsePayload(payload)
	switch {
	case kind == 'p':
		for {
			old := c.minProbe.Load()
			if int64(seq) >= old || c.minProbe.CompareAndSwap(old, int64(seq)) {
				break
			}
		}
		c.probes.Add(1)
	case kind == 'd' && seq < c.n:
		t := now.UnixNano()
		c.first.CompareAndSwap(0, t)
		c.last.Store(t)
		c.data.Add(1)
		mask := uint32(1) << (seq % 32)
		if atomic.OrUint32(&c.seen[seq/32], mask)&mask != 0 {
			c.dups.Add(1)
		} else {
			c.unique.Add(1)
		}
	default:
		c.other.Add(1)
	}
}

// rate is the data messages per second between the first and the last one.
func (c *counter) rate() float64 {
	return rate(c.data.Load(), time.Duration(c.last.Load()-c.first.Load()))
}

// rate returns n per second over d, or 0 when d is not positive.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perMsg is cpu in microseconds per message, or 0 without messages.
func perMsg(cpu time.Duration, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(n)
}

// results prints the figures of a receiving phase. cpu is the CPU time the
// process (publishers included) used for the phase.
func (c *counter) results(name string, published int, pubRate float64, cpu time.Duration) []figure {
	return []figure{
		{name + "_msgs_per_s", c.rate(), "%.0f"},
		{name + "_received", float64(c.unique.Load()), "%.0f"},
		{name + "_lost", float64(int64(published) - c.unique.Load()), "%.0f"},
		{name + "_duplicates", float64(c.dups.Load()), "%.0f"},
		{name + "_publish_msgs_per_s", pubRate, "%.0f"},
		{name + "_cpu_us_per_msg", perMsg(cpu, published), "%.1f"},
	}
}
