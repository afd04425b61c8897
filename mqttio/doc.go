// Package mqttio reads from and writes to MQTT brokers in Apache Beam Go pipelines.
//
// Read is an unbounded splittable DoFn that subscribes to topic filters on a
// broker cluster and emits one Message per MQTT message. Write publishes
// Publications, pipelining the publishes of a bundle and waiting for the
// broker's acknowledgements when the bundle finishes.
//
// # Delivery guarantee
//
// For QoS 1 and 2, Read is at-least-once: a message is acknowledged to the
// broker only after the bundle that emitted it has committed, and the reader
// uses a persistent session (clean session off) under a stable client id, so a
// reader that dies gets its unacknowledged messages redelivered when it comes
// back. Beam Go's bundle finalization cannot be used for this (it runs the
// callbacks of a plan's first bundle only, see TestBundleFinalizationIsStillBroken),
// so Read acknowledges on resume instead: the restriction of the splittable
// DoFn is an offset range over the messages the reader has emitted, the
// messages emitted but not yet acknowledged are kept in a per-worker session,
// and when the runner resumes the residual restriction that starts at offset n,
// the bundle that emitted everything below n has committed and those messages
// are acknowledged. A retried bundle re-emits from the session's log. Messages
// can therefore be delivered more than once (after a crash, a reconnect or a
// move of the reader to another worker); downstream steps should tolerate
// duplicates. QoS 0 messages are fire-and-forget: they are lost if the reader
// is down.
//
// # Throughput and the broker's inflight window
//
// Brokers cap the QoS 1 and 2 messages a client may have unacknowledged
// (Mosquitto max_inflight_messages and VerneMQ max_inflight_messages default
// to 20, EMQX max_inflight to 32). Because acknowledgements wait for the next
// bundle, the reader checkpoints as soon as it has emitted InflightWindow
// unacknowledged messages and the broker has nothing more ready, so a reader
// moves about one window per bundle. Raise the broker's window (e.g. 1000) for
// high-rate QoS 1 streams, and spread the load over several readers with
// Readers(n), which subscribes through shared subscriptions
// ($share/{group}/{filter}) so the broker balances messages across them.
//
// # MQTT 5
//
// ProtocolVersion(5) speaks MQTT 5 (through Eclipse Paho's paho.golang;
// MQTT 3.1.1, the default, goes through paho.mqtt.golang). Read and Write
// keep every promise above, through one connection abstraction with a
// client per protocol. Each MQTT 5 connection has its own session state, so
// an acknowledgement deferred to the next bundle never reaches a later
// connection than the one its message came on (paho.golang leaves an Ack
// after a reconnect undefined). What MQTT 5 adds: flow control both ways
// (the reader announces its window as Receive Maximum and, without
// InflightWindow, checkpoints on the broker's from its CONNACK; the writer
// keeps no more publishes unacknowledged than the broker's), SessionExpiry,
// Properties on Message and Publication, reason codes in errors and in
// Write's error output, enhanced authentication (Auth), and the broker's
// keep-alive and maximum packet size.
//
// # Runners
//
// Read runs on prism (Beam Go's default local runner) and Dataflow. The
// deprecated direct runner does not resume splittable DoFns; there Read only
// supports bounded reads (MaxRecords or MaxReadTime), which it runs to the end
// in one call, acknowledging each message after it has been emitted.
package mqttio
