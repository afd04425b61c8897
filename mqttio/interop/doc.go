// Package interop holds the broker interop matrix: its tests run the same
// mqttio checks (QoS 0, 1 and 2, wildcards, retained messages, persistent
// sessions after a SIGKILL of the reader, shared subscriptions, inflight
// windows, TLS) against every broker that can run here: the embedded mochi
// broker, Mosquitto, a three-node RabbitMQ cluster (MQTT plugin), ejabberd
// (mod_mqtt) and aedes, at MQTT 3.1.1 and, on the brokers that speak it,
// at MQTT 5 (mqttio.ProtocolVersion(5)). Each broker is started once for
// the package, on free loopback ports, and stopped when the tests end.
//
// Where a broker lacks a feature the check asserts what the broker does
// instead and how mqttio behaves then; the README's interop matrix is the
// table of these results. A broker that is not installed is skipped, unless
// MQTTBEAM_REQUIRE_BROKERS=1 (CI), which makes it a failure;
// scripts/install-brokers.sh installs them all.
//
// The package has no API: it is only its tests.
package interop
