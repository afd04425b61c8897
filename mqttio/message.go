package mqttio

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/mqttbeam/mqttbeam/internal/wire"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Message)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Message)(nil)).Elem(), encodeMessage, decodeMessage)
	beam.RegisterType(reflect.TypeOf((*Publication)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*PublishError)(nil)).Elem())
}

// Message is one MQTT message as Read emits it.
type Message struct {
	// Topic is the concrete topic the message was published to (never a
	// filter with wildcards).
	Topic string
	// Payload is the message body, as sent.
	Payload []byte
	// QoS is the quality of service the message was delivered with: the
	// lower of the publisher's and the subscription's.
	QoS byte
	// Retained is set for a retained message the broker sent on subscribe.
	Retained bool
	// Duplicate is set when the broker redelivered the message (MQTT DUP
	// flag), e.g. after the reader reconnected.
	Duplicate bool
	// ReceivedAt is when the reader received the message from the broker.
	ReceivedAt time.Time
}

// Publication is one message for Write to publish.
type Publication struct {
	// Topic is the topic to publish to when the Write has no TopicTemplate.
	Topic string
	// Fields fill the {name} placeholders of the Write's TopicTemplate.
	Fields map[string]string
	// Payload is the message body.
	Payload []byte
}

// PublishError is a Publication that Write refused to publish, with the
// reason (an invalid or unsafe topic).
type PublishError struct {
	Publication Publication
	Reason      string
}

const (
	flagRetained = 1 << iota
	flagDuplicate
)

// encodeMessage is Message's Beam coder: a compact binary form (see
// internal/wire), because every message crosses the runner's data plane at
// least once.
func encodeMessage(m Message) []byte {
	b := make([]byte, 0, len(m.Topic)+len(m.Payload)+24)
	b = wire.AppendString(b, m.Topic)
	b = wire.AppendBytes(b, m.Payload)
	var flags byte
	if m.Retained {
		flags |= flagRetained
	}
	if m.Duplicate {
		flags |= flagDuplicate
	}
	b = append(b, m.QoS, flags)
	var ts int64
	if !m.ReceivedAt.IsZero() {
		ts = m.ReceivedAt.UnixNano()
	}
	return wire.AppendVarint(b, ts)
}

var errCorruptMessage = errors.New("mqttio: corrupt encoded Message")

func decodeMessage(b []byte) (Message, error) {
	r := wire.NewReader(b)
	m := Message{Topic: r.String(), Payload: r.Bytes(), QoS: r.Byte()}
	flags := r.Byte()
	m.Retained, m.Duplicate = flags&flagRetained != 0, flags&flagDuplicate != 0
	if ts := r.Varint(); ts != 0 {
		m.ReceivedAt = time.Unix(0, ts).UTC()
	}
	if err := r.Err(); err != nil {
		return Message{}, fmt.Errorf("%w: %v", errCorruptMessage, err)
	}
	return m, nil
}
