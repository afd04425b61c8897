package mqttio

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// dialBuffered opens a plain TCP connection with buffered reads and
// coalesced writes (see bufferedConn). paho reads each packet's header and
// body straight from the connection, 3 to 4 system calls per message, and
// writes each packet with its own system call: a reader acknowledging a
// bundle's thousand messages made a thousand writes. TLS and websocket
// connections buffer reads already.
func dialBuffered(uri *url.URL, opts mqtt.ClientOptions) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", uri.Host, opts.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	return newBufferedConn(conn, opts.WriteTimeout), nil
}

// bufferedConn is a net.Conn whose reads go through a buffer and whose
// writes are coalesced: Write queues the bytes and returns, and a goroutine
// started when the queue was empty sends everything queued meanwhile in one
// system call, then whatever was queued during that call, until the queue
// is empty. Bytes go out in the order written. Buffering reads raised a
// plain paho subscriber from 61k to 85k msg/s on loopback
// (scripts/bench-mqttio.sh).
//
// Write waits while maxQueued bytes are queued, so that a slow network still
// holds the writer back. A failed send wakes paho's reader with the send's
// error, so that paho reports the connection lost (an error reading from a
// connection closed under it would pass for a deliberate disconnect), and
// later writes return it too. Each send is
// bounded by writeTimeout; the deadlines paho sets on writes are ignored, as
// paho's writes wait for the network only through the queue. Close sends
// what is queued first.
type bufferedConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration
	packet       sync.Mutex // see Lock
	first        [4]byte    // the first bytes read (see head)
	nfirst       int

	mu      sync.Mutex
	changed sync.Cond // broadcast when a sender takes the queue or stops
	queued  []byte
	sending bool  // a sender goroutine runs
	failed  error // the first failed send
	err     error // what Write returns: failed, or net.ErrClosed after Close
}

func newBufferedConn(conn net.Conn, writeTimeout time.Duration) *bufferedConn {
	c := &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 16<<10), writeTimeout: writeTimeout}
	c.changed.L = &c.mu
	return c
}

// maxQueued is how many bytes Write queues before it waits for the sender.
const maxQueued = 256 << 10

// Read reads through the buffer; once a send has failed, its error replaces
// the reader's.
func (c *bufferedConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.nfirst < len(c.first) {
		c.nfirst += copy(c.first[c.nfirst:], p[:n])
	}
	if err != nil {
		c.mu.Lock()
		if c.failed != nil {
			err = c.failed
		}
		c.mu.Unlock()
	}
	return n, err
}

// Write queues p for sending.
func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queued) >= maxQueued && c.err == nil {
		c.changed.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	c.queued = append(c.queued, p...)
	if !c.sending {
		c.sending = true
		go c.send()
	}
	return len(p), nil
}

// send writes the queue to the connection until it is empty.
func (c *bufferedConn) send() {
	var batch []byte
	c.mu.Lock()
	for len(c.queued) > 0 && c.err == nil {
		batch, c.queued = c.queued, batch[:0]
		c.changed.Broadcast()
		c.mu.Unlock()
		err := c.writeBatch(batch)
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.failed = fmt.Errorf("sending to the broker: %w", err)
			c.err = c.failed
			_ = c.Conn.SetReadDeadline(time.Unix(1, 0)) // wakes the reader
		}
	}
	c.sending = false
	c.changed.Broadcast()
	c.mu.Unlock()
}

func (c *bufferedConn) writeBatch(b []byte) error {
	if c.writeTimeout > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return err
		}
	}
	_, err := c.Conn.Write(b)
	return err
}

// Close sends what is queued, then closes the connection.
func (c *bufferedConn) Close() error {
	c.mu.Lock()
	for c.sending {
		c.changed.Wait()
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// head returns the first bytes read from the connection, up to 4: enough
// to tell an MQTT 3.1.1 CONNACK from an MQTT 5 one.
func (c *bufferedConn) head() []byte { return c.first[:c.nfirst] }

// Lock and Unlock make the connection a sync.Locker, which paho.golang
// holds while it writes a packet in several Writes, so that the packets of
// its goroutines (acknowledgements, pings, publishes) do not interleave.
func (c *bufferedConn) Lock() { c.packet.Lock() }

// Unlock ends a packet's writes (see Lock).
func (c *bufferedConn) Unlock() { c.packet.Unlock() }

// SetDeadline sets the read deadline only: each send has its own.
func (c *bufferedConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// SetWriteDeadline is a no-op: each send has its own deadline.
func (c *bufferedConn) SetWriteDeadline(time.Time) error { return nil }
