// Package brokertest starts MQTT brokers for tests: the in-process mochi
// broker of package embeddedbroker (Embedded) and the real mosquitto binary
// (Mosquitto). Every broker is stopped by t.Cleanup. The certificates for TLS
// tests come from package certs.
//
// It also has small helpers for paho clients in tests (ClientOptions,
// Connect, TryConnect, Await and Inbox), all bounded by Timeout.
package brokertest

import (
	"testing"

	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// Embedded starts an in-process broker configured by opts and closes it when
// the test ends. It fails the test if the broker cannot start.
func Embedded(t testing.TB, opts ...embeddedbroker.Option) *embeddedbroker.Broker {
	t.Helper()
	b, err := embeddedbroker.Start(opts...)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("brokertest: %v", err)
		}
	})
	return b
}
