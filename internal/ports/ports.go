// Package ports finds free TCP ports and waits until listeners accept
// connections. It serves the brokers started for tests and demos.
package ports

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// pollInterval is the pause between two connection attempts in WaitAccepting.
const pollInterval = 10 * time.Millisecond

// Free asks the operating system for a TCP port that is free on host (for
// example "127.0.0.1") and returns it. The port is released before Free
// returns, so another process may take it before the caller binds it; callers
// that can bind "host:0" themselves should prefer that.
func Free(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find free port on %s: %w", host, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("release free port %d: %w", port, err)
	}
	return port, nil
}

// WaitAccepting polls each of addrs ("host:port") with TCP dials until every
// one accepts a connection or ctx is done. On failure the error names the
// address that did not come up and wraps the last dial error as well as the
// context's cause.
func WaitAccepting(ctx context.Context, addrs ...string) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var dialer net.Dialer
	for _, addr := range addrs {
		for {
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			if err == nil {
				if err := conn.Close(); err != nil {
					return fmt.Errorf("close probe connection to %s: %w", addr, err)
				}
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not accepting connections: %w", addr, errors.Join(err, context.Cause(ctx)))
			case <-ticker.C:
			}
		}
	}
	return nil
}
