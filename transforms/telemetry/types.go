// Package telemetry turns MQTT messages into telemetry readings: it parses
// the device id from the topic and the metrics, attributes and event time
// from the payload, in the format the topic calls for (JSON objects, batches
// from gateways, plain values, Sparkplug B, InfluxDB line protocol), and
// sends what it cannot parse to a dead-letter output with the reason and the
// original bytes.
package telemetry

import (
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Reading)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*DeadLetter)(nil)).Elem())
}

// Time sources of a Reading's event time.
const (
	TimeFromPayload  = "payload"  // the payload's timestamp field
	TimeFromReceived = "received" // the payload had none: the receive time
)

// Reading is the values one device reported at one time: one parsed
// telemetry message, or one element or timestamp of a message that holds
// several (a batch, a Sparkplug B payload).
type Reading struct {
	DeviceID string
	// Kind is the topic level after "telemetry" (devices/{id}/telemetry/{kind}),
	// empty when the topic has none; for Sparkplug B the message type
	// (NDATA, DBIRTH, ...).
	Kind       string
	Topic      string
	EventTime  time.Time
	ReceivedAt time.Time
	// TimeSource says where EventTime came from: TimeFromPayload or
	// TimeFromReceived.
	TimeSource string
	// Metrics are the payload's numbers, nested ones named by their dotted
	// path ("env.temperature").
	Metrics map[string]float64
	// Attributes are the payload's strings and booleans ("true"/"false"),
	// named as the metrics, and AttrGateway for readings a gateway
	// published for a device behind it.
	Attributes map[string]string
	// PayloadHash identifies the payload's bytes (FNV-1a 64), for
	// deduplicating redelivered messages.
	PayloadHash uint64
}

// DeadLetter is a message, or a part of one (a batch element, an influx
// line, Sparkplug B metrics of unsupported types), that could not be turned
// into a Reading, or a Sparkplug B seq gap.
type DeadLetter struct {
	Topic      string
	Payload    []byte
	ReceivedAt time.Time
	// Reason is a stable code (see the Reason* constants) for counting and
	// alerting; Detail says what was wrong in words a person can act on.
	Reason string
	Detail string
}
