package mqttio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
)

// processSuffix makes writer client ids unique per worker process.
var processSuffix = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (it crashes the program instead)
	return hex.EncodeToString(b[:])
}()

// writers is the per-worker cache of writer connections, keyed by their
// connection settings. Bundles running at the same time share a connection
// (brokerConn is safe for concurrent use); one that nobody has used for
// SessionIdle is closed.
var writers = writerCache{m: map[string]*writer{}, closing: map[string]bool{}}

type writerCache struct {
	mu      sync.Mutex
	m       map[string]*writer
	closing map[string]bool // client ids of writers still disconnecting
}

// writer is one shared connection of a worker.
type writer struct {
	id      string
	key     string
	brokers []string
	cfg     writeConfig

	// Guarded by writerCache.mu.
	users int
	idle  *time.Timer

	connMu sync.Mutex // serializes connecting and closing
	conn   brokerConn

	mu   sync.Mutex
	gen  uint64 // counts the connections
	lost error  // why the current connection was lost, until the next one

	closed chan struct{} // closed once closed and its client id is free again
}

func newWriter(id, key string, brokers []string, cfg writeConfig) *writer {
	return &writer{id: id, key: key, brokers: brokers, cfg: cfg, closed: make(chan struct{})}
}

// acquire returns the writer for key, creating it with a client id made of
// base and the process suffix that no other live writer of this process
// uses, and counts the caller as a user.
func (c *writerCache) acquire(key, base string, create func(id string) *writer) *writer {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.m[key]
	if w == nil {
		id := base + "-" + processSuffix
		for n := 2; c.idInUse(id); n++ {
			id = base + "-" + processSuffix + "-" + strconv.Itoa(n)
		}
		w = create(id)
		c.m[key] = w
	}
	w.users++
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	return w
}

func (c *writerCache) idInUse(id string) bool {
	if c.closing[id] {
		return true
	}
	for _, w := range c.m {
		if w.id == id {
			return true
		}
	}
	return false
}

// release counts a user out; the last one arms the idle timer.
func (c *writerCache) release(w *writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.users--
	if w.users > 0 {
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(w.cfg.SessionIdle, func() {
		c.mu.Lock()
		if w.users > 0 || w.idle != timer || c.m[w.key] != w {
			c.mu.Unlock()
			return
		}
		delete(c.m, w.key)
		c.closing[w.id] = true
		c.mu.Unlock()

		w.close()

		c.mu.Lock()
		delete(c.closing, w.id)
		c.mu.Unlock()
		close(w.closed)
	})
	w.idle = timer
}

// connect returns the writer's connection, connecting it first if it has
// none or lost it. A failed connection is tried again with backoff up to
// PublishTries times, unless retrying cannot help (see isPermanent). A
// writer's client id is its own, so no other connection competes for it.
func (w *writer) connect(ctx context.Context) (brokerConn, error) {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	if w.conn != nil {
		lost := w.lostErr()
		if lost == nil {
			return w.conn, nil
		}
		w.conn.close()
		w.conn = nil
	}
	for try := 1; ; try++ {
		spec, err := w.cfg.dialSpec(w.brokers, w.id)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.gen++
		gen := w.gen
		w.lost = nil
		w.mu.Unlock()
		spec.onLost = func(err error) { w.setLost(gen, err) }
		spec.publishWait = w.cfg.PublishWait
		conn, err := w.cfg.dial(ctx, &spec)
		if err == nil {
			if err := w.cfg.fits(conn.limits()); err != nil {
				conn.close()
				return nil, &permanentError{fmt.Errorf("connecting to %s as client %q: %w", strings.Join(w.brokers, ","), w.id, err)}
			}
			w.conn = conn
			return conn, nil
		}
		if isPermanent(err) || try >= w.cfg.PublishTries || ctx.Err() != nil {
			return nil, err
		}
		if err := sleep(ctx, retryBackoff(try)); err != nil {
			return nil, err
		}
	}
}

// setLost records why connection gen was lost; the next connect replaces
// it.
func (w *writer) setLost(gen uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen == gen && w.lost == nil {
		w.lost = err
		log.Warnf(context.Background(), "mqttio: writer %s lost its connection, reconnecting when it publishes next: %v", w.id, err)
	}
}

func (w *writer) lostErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}

// publishFailed is the error of a publish that ran out of tries.
func (w *writer) publishFailed(topic string, tries int, err error) error {
	lost := w.lostErr()
	const format = "mqttio.Write: publishing to topic %q on %s as client %q failed after %d attempts: %w"
	brokers := strings.Join(w.brokers, ",")
	if lost != nil {
		return fmt.Errorf(format+" (the connection was lost: %v)", topic, brokers, w.id, tries, err, lost)
	}
	return fmt.Errorf(format, topic, brokers, w.id, tries, err)
}

// close disconnects the writer. Its users have all waited for their
// publishes, so nothing is left to send.
func (w *writer) close() {
	w.connMu.Lock()
	conn := w.conn
	w.conn = nil
	w.connMu.Unlock()
	if conn != nil {
		conn.close()
	}
}
