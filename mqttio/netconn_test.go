package mqttio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Writes reach the peer complete and in order, and Close sends what is
// still queued before it closes.
func TestBufferedConnKeepsOrderAndFlushesOnClose(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	received := make(chan []byte, 1)
	go func() {
		conn, err := lis.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer conn.Close()
		b, _ := io.ReadAll(conn)
		received <- b
	}()
	conn, err := net.Dial("tcp", lis.Addr().String())
	require.NoError(t, err)
	c := newBufferedConn(conn, 5*time.Second)

	var want bytes.Buffer
	for i := range 100_000 { // 400 KB: more than maxQueued
		p := binary.BigEndian.AppendUint32(nil, uint32(i))
		want.Write(p)
		n, err := c.Write(p)
		require.NoError(t, err)
		require.Equal(t, 4, n)
	}
	require.NoError(t, c.Close())
	select {
	case got := <-received:
		assert.True(t, bytes.Equal(want.Bytes(), got), "got %d bytes, want %d in order", len(got), want.Len())
	case <-time.After(10 * time.Second):
		t.Fatal("the peer did not see the connection close")
	}
	_, err = c.Write([]byte("late"))
	assert.ErrorIs(t, err, net.ErrClosed)
}

// brokenConn fails every write; its reads block until a read deadline is
// set.
type brokenConn struct {
	net.Conn
	unblock chan struct{}
	once    sync.Once
}

var errBroken = errors.New("broken pipe")

func (c *brokenConn) Write([]byte) (int, error) { return 0, errBroken }
func (c *brokenConn) Read([]byte) (int, error) {
	<-c.unblock
	return 0, os.ErrDeadlineExceeded
}
func (c *brokenConn) SetReadDeadline(time.Time) error {
	c.once.Do(func() { close(c.unblock) })
	return nil
}
func (c *brokenConn) SetWriteDeadline(time.Time) error { return nil }
func (c *brokenConn) Close() error                     { return nil }

// A failed send ends paho's blocked read with the send's error (not one
// paho would take for its own disconnect, which it does not report), and
// the writes after it return the error too.
func TestBufferedConnReportsFailedSend(t *testing.T) {
	c := newBufferedConn(&brokenConn{unblock: make(chan struct{})}, time.Second)
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		readErr <- err
	}()
	_, err := c.Write([]byte("puback"))
	require.NoError(t, err, "queued")
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, errBroken)
		assert.NotContains(t, err.Error(), "use of closed network connection")
	case <-time.After(10 * time.Second):
		t.Fatal("the reader was not woken by the failed send")
	}
	_, err = c.Write([]byte("next"))
	assert.ErrorIs(t, err, errBroken)
	require.NoError(t, c.Close())
}
