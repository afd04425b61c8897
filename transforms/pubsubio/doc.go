// Package pubsubio reads from and writes to Google Cloud Pub/Sub in Apache
// Beam Go pipelines, on any runner (Beam's own io/pubsubio only runs on
// Dataflow). It uses cloud.google.com/go/pubsub/v2.
//
// Write publishes a PCollection<Message> to a topic: Data, Attributes and,
// with the Ordering option, OrderingKey. Publishes are batched by a
// per-worker publisher and awaited when the bundle finishes, so a failed
// publish fails the bundle and the runner retries it.
//
// Read is an unbounded splittable DoFn that pulls from a subscription
// (streaming pull, with the client library's flow control and ack-deadline
// extension) and emits one Message per Pub/Sub message, timestamped with its
// publish time.
//
// # Delivery guarantee
//
// Read is at-least-once. A message is acknowledged only after the bundle
// that emitted it has committed. Beam Go's bundle finalization cannot be used
// for this (it runs the callbacks of a plan's first bundle only in v2.77.0),
// so Read acknowledges on resume, like mqttio.Read: the restriction of the
// splittable DoFn is an offset range over the messages a reader has emitted
// (internal/streamread), the messages emitted but not yet acknowledged are
// kept in a per-worker session, and when the runner resumes the residual
// restriction that starts at offset n, the bundle that emitted everything
// below n has committed and those messages are acknowledged. A retried
// bundle re-emits from the session's log. A session that closes (idle, or
// replaced because its reader moved to another worker) nacks what it holds,
// so Pub/Sub redelivers it at once; after a crash, Pub/Sub redelivers once
// the ack deadlines pass. Downstream steps should tolerate duplicates.
//
// # Watermark and backlog
//
// The watermark trails the newest publish time by MaxOutOfOrderness and
// advances to the current time (minus that bound) while the subscription is
// quiet (IdleWatermark), so windows close. It moves in whole steps
// (WatermarkStep, default 1s; see mqttio.WatermarkStep). Each reader reports the messages
// waiting on its worker as its remaining work, which is what Dataflow
// autoscales on.
//
// # Runners
//
// Read runs on prism (Beam Go's default local runner) and Dataflow. The
// deprecated direct runner does not resume splittable DoFns; there Read only
// supports bounded reads (MaxRecords or MaxReadTime), which it runs to the
// end in one call, acknowledging each message after the steps fused after
// the read have processed it.
//
// # Local servers
//
// The Endpoint option points both transforms at pstest or the Pub/Sub
// emulator over plaintext gRPC without credentials. Without it, they reach
// Google Cloud over TLS with the application default credentials.
//
// # Metrics
//
// Namespace "pubsubio": published, publish_errors (Write); messages_read,
// bytes_read, acks, redeliveries (Read; redeliveries are counted when the
// subscription has a dead-letter policy, which makes Pub/Sub report delivery
// attempts).
package pubsubio
