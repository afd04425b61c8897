package mqttio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
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

// brokenConn fails every write and records that it was closed.
type brokenConn struct {
	net.Conn
	closed atomic.Bool
}

var errBroken = errors.New("broken pipe")

func (c *brokenConn) Write([]byte) (int, error)        { return 0, errBroken }
func (c *brokenConn) SetWriteDeadline(time.Time) error { return nil }
func (c *brokenConn) Close() error                     { c.closed.Store(true); return nil }

// A failed send closes the connection, so that paho's reader sees it lost,
// and the writes after it return its error.
func TestBufferedConnReportsFailedSend(t *testing.T) {
	conn := &brokenConn{}
	c := newBufferedConn(conn, time.Second)
	_, err := c.Write([]byte("puback"))
	require.NoError(t, err, "queued")
	require.NoError(t, c.Close()) // waits for the send
	assert.True(t, conn.closed.Load())
	_, err = c.Write([]byte("next"))
	assert.ErrorIs(t, err, errBroken)
}
