package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// pahoTimeout bounds every single paho operation the benchmark waits for.
const pahoTimeout = 30 * time.Second

// runID returns a random id, so that runs against the same broker do not
// share topics or sessions.
func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// connect connects a paho client that does not reconnect by itself.
func connect(ctx context.Context, broker, id string, clean bool, configure func(*mqtt.ClientOptions)) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(clean).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(pahoTimeout).
		SetKeepAlive(60 * time.Second)
	if configure != nil {
		configure(opts)
	}
	c := mqtt.NewClient(opts)
	if err := await(ctx, c.Connect()); err != nil {
		return nil, fmt.Errorf("connecting to %s as %q: %w", broker, id, err)
	}
	return c, nil
}

// connectPublishers connects n publishing clients.
func connectPublishers(ctx context.Context, broker, id string, n int) ([]mqtt.Client, error) {
	var cs []mqtt.Client
	for i := range n {
		c, err := connect(ctx, broker, fmt.Sprintf("%s-pub%d", id, i), true, nil)
		if err != nil {
			disconnectAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func disconnectAll(cs []mqtt.Client) {
	for _, c := range cs {
		c.Disconnect(100)
	}
}

// await waits for a paho token, bounded by pahoTimeout and ctx.
func await(ctx context.Context, tok mqtt.Token) error {
	t := time.NewTimer(pahoTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer from the broker within %v", pahoTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publishN publishes the data messages 0..n-1 to topic, spread over the
// clients (client k publishes k, k+len(clients), ...), each client keeping up
// to pending publishes in flight. It returns once every publish has completed
// (QoS 0: written; QoS 1 and 2: acknowledged) and how long that took.
func publishN(ctx context.Context, clients []mqtt.Client, topic string, qos byte, n, size, pending int) (time.Duration, error) {
	start := time.Now()
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for k, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = publishShare(ctx, c, topic, qos, k, len(clients), n, size, pending)
		}()
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

func publishShare(ctx context.Context, c mqtt.Client, topic string, qos byte, first, step, n, size, pending int) error {
	ring := make([]mqtt.Token, pending)
	head, inFlight := 0, 0
	for seq := first; seq < n; seq += step {
		if inFlight == pending {
			if err := await(ctx, ring[head]); err != nil {
				return fmt.Errorf("publishing: %w", err)
			}
			ring[head] = nil
			head = (head + 1) % pending
			inFlight--
		}
		ring[(head+inFlight)%pending] = c.Publish(topic, qos, false, dataPayload(seq, size))
		inFlight++
	}
	for ; inFlight > 0; inFlight-- {
		if err := await(ctx, ring[head]); err != nil {
			return fmt.Errorf("publishing: %w", err)
		}
		head = (head + 1) % pending
	}
	return nil
}

// waitReceived waits until the counter has seen want distinct data messages,
// or no new one for idle, or ctx ends, or ended (if not nil) delivers. It
// reports whether everything arrived.
func waitReceived(ctx context.Context, c *counter, want int, idle time.Duration, ended <-chan error) (complete bool, endErr error, endedEarly bool) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := c.data.Load(), time.Now()
	for c.unique.Load() < int64(want) {
		select {
		case err := <-ended:
			return c.unique.Load() >= int64(want), err, true
		case <-ctx.Done():
			return false, nil, false
		case <-tick.C:
		}
		if now := c.data.Load(); now != last {
			last, lastChange = now, time.Now()
		} else if time.Since(lastChange) >= idle {
			return false, nil, false
		}
	}
	return true, nil, false
}

// bufferedConn reads a connection through a buffer. paho reads each packet
// with several small reads (type byte, length bytes, body), each a syscall
// on a plain connection; the buffer turns them into about one per 4 KB.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dialBuffered is a paho OpenConnectionFunc for tcp:// brokers that reads
// through a buffer (the -buffered-conn experiment of rawsub).
func dialBuffered(uri *url.URL, opts mqtt.ClientOptions) (net.Conn, error) {
	if uri.Scheme != "tcp" && uri.Scheme != "mqtt" {
		return nil, fmt.Errorf("-buffered-conn supports tcp:// brokers only, not %s", uri.Scheme)
	}
	conn, err := net.DialTimeout("tcp", uri.Host, opts.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 4096)}, nil
}
