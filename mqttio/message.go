package mqttio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
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

// encodeMessage is Message's Beam coder: a compact binary form, because every
// message crosses the runner's data plane at least once.
func encodeMessage(m Message) []byte {
	b := make([]byte, 0, len(m.Topic)+len(m.Payload)+24)
	b = binary.AppendUvarint(b, uint64(len(m.Topic)))
	b = append(b, m.Topic...)
	b = binary.AppendUvarint(b, uint64(len(m.Payload)))
	b = append(b, m.Payload...)
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
	return binary.AppendVarint(b, ts)
}

var errCorruptMessage = errors.New("mqttio: corrupt encoded Message")

func decodeMessage(b []byte) (Message, error) {
	var m Message
	topic, b, err := readBytes(b)
	if err != nil {
		return m, err
	}
	payload, b, err := readBytes(b)
	if err != nil {
		return m, err
	}
	if len(b) < 2 {
		return m, errCorruptMessage
	}
	m.Topic, m.Payload = string(topic), payload
	m.QoS, m.Retained, m.Duplicate = b[0], b[1]&flagRetained != 0, b[1]&flagDuplicate != 0
	ts, n := binary.Varint(b[2:])
	if n <= 0 || n != len(b)-2 {
		return m, fmt.Errorf("%w: bad receive time", errCorruptMessage)
	}
	if ts != 0 {
		m.ReceivedAt = time.Unix(0, ts).UTC()
	}
	return m, nil
}

func readBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errCorruptMessage
	}
	return b[k : k+int(n) : k+int(n)], b[k+int(n):], nil
}
