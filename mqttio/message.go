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

	// Properties are the MQTT 5 properties of the message, as the publisher
	// set them (empty when reading with MQTT 3.1.1).
	Properties
}

// Properties are the MQTT 5 properties of a message: what Read received
// with a Message, what Write publishes with a Publication (MQTT 3.1.1 has
// none: Write ignores them).
type Properties struct {
	// UserProperties are the publisher's name-value pairs, in order.
	UserProperties UserProperties
	// ContentType describes the payload, e.g. "application/json".
	ContentType string
	// ResponseTopic is where the publisher expects an answer
	// (request/response), with CorrelationData to tie it to the request.
	ResponseTopic   string
	CorrelationData []byte
	// MessageExpiry is how long the broker keeps the message for a
	// subscriber before dropping it; 0: it does not expire. A received
	// message has what was left of it when the broker sent it; a published
	// one's is rounded up to whole seconds.
	MessageExpiry time.Duration
	// PayloadUTF8 declares the payload UTF-8 text (payload format
	// indicator 1).
	PayloadUTF8 bool
}

// UserProperty is one MQTT 5 user property: a name-value pair.
type UserProperty struct {
	Name, Value string
}

// UserProperties are MQTT 5 user properties, in order. A name may occur
// more than once.
type UserProperties []UserProperty

// Get returns the value of the first property named name.
func (p UserProperties) Get(name string) (string, bool) {
	for _, u := range p {
		if u.Name == name {
			return u.Value, true
		}
	}
	return "", false
}

// Publication is one message for Write to publish.
type Publication struct {
	// Topic is the topic to publish to when the Write has no TopicTemplate.
	Topic string
	// Fields fill the {name} placeholders of the Write's TopicTemplate.
	Fields map[string]string
	// Payload is the message body.
	Payload []byte

	// Properties are the MQTT 5 properties to publish with.
	Properties
}

// PublishError is a Publication that Write did not publish, with the reason:
// an invalid or unsafe topic, or the broker's refusal (MQTT 5).
type PublishError struct {
	Publication Publication
	Reason      string
	// ReasonCode is the broker's MQTT 5 reason code when it refused the
	// publish (e.g. 0x87, not authorized), or would have (0x95, packet too
	// large); 0 for a topic Write refused itself.
	ReasonCode byte
}

const (
	flagRetained = 1 << iota
	flagDuplicate
	flagV5   // the MQTT 5 properties follow the receive time
	flagUTF8 // PayloadUTF8
)

// encodeMessage is Message's Beam coder: a compact binary form (see
// internal/wire), because every message crosses the runner's data plane at
// least once. A message without
// MQTT 5 properties encodes as it did before they existed (topic, payload,
// QoS, flags, receive time); one with them sets flagV5 and appends them.
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
	v5 := m.hasV5()
	if v5 {
		flags |= flagV5
	}
	if m.PayloadUTF8 {
		flags |= flagUTF8
	}
	b = append(b, m.QoS, flags)
	var ts int64
	if !m.ReceivedAt.IsZero() {
		ts = m.ReceivedAt.UnixNano()
	}
	b = wire.AppendVarint(b, ts)
	if !v5 {
		return b
	}
	b = wire.AppendString(b, m.ContentType)
	b = wire.AppendString(b, m.ResponseTopic)
	b = wire.AppendBytes(b, m.CorrelationData)
	b = wire.AppendVarint(b, int64(m.MessageExpiry))
	b = wire.AppendUvarint(b, uint64(len(m.UserProperties)))
	for _, u := range m.UserProperties {
		b = wire.AppendString(wire.AppendString(b, u.Name), u.Value)
	}
	return b
}

// hasV5 reports whether m has MQTT 5 properties that the coder's base form
// cannot hold.
func (m *Message) hasV5() bool {
	return len(m.UserProperties) > 0 || m.ContentType != "" || m.ResponseTopic != "" || m.CorrelationData != nil || m.MessageExpiry != 0
}

var errCorruptMessage = errors.New("mqttio: corrupt encoded Message")

func decodeMessage(b []byte) (Message, error) {
	var m Message
	r := wire.NewReader(b)
	m.Topic = r.String()
	m.Payload = r.Bytes()
	qos, flags := r.Byte(), r.Byte()
	ts := r.Varint()
	m.QoS, m.Retained, m.Duplicate = qos, flags&flagRetained != 0, flags&flagDuplicate != 0
	m.PayloadUTF8 = flags&flagUTF8 != 0
	if ts != 0 {
		m.ReceivedAt = time.Unix(0, ts).UTC()
	}
	if flags&flagV5 != 0 {
		m.ContentType = r.String()
		m.ResponseTopic = r.String()
		if c := r.Bytes(); len(c) > 0 {
			m.CorrelationData = c
		}
		m.MessageExpiry = time.Duration(r.Varint())
		if n := r.Count(); n > 0 {
			m.UserProperties = make(UserProperties, n)
			for i := range m.UserProperties {
				m.UserProperties[i] = UserProperty{Name: r.String(), Value: r.String()}
			}
		}
	}
	if err := r.Err(); err != nil {
		return m, fmt.Errorf("%w: %v", errCorruptMessage, err)
	}
	return m, nil
}
