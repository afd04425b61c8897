package pubsubio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

func init() {
	beam.RegisterType(reflect.TypeOf((*Message)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Message)(nil)).Elem(), encodeMessage, decodeMessage)
}

// Message is one Pub/Sub message: what Write publishes and what Read emits.
type Message struct {
	// Data is the message body.
	Data []byte
	// Attributes are the message's key/value pairs (the MQTT bridge sets
	// mqtt_topic and mqtt_qos).
	Attributes map[string]string
	// OrderingKey groups messages delivered in publish order when ordering
	// is on (Write's Ordering option and the subscription's setting).
	OrderingKey string
	// ID is the id Pub/Sub gave the message (set by Read; ignored by Write).
	ID string
	// PublishTime is when Pub/Sub received the message (set by Read, which
	// also uses it as the element's timestamp; ignored by Write).
	PublishTime time.Time
}

// encodeMessage is Message's Beam coder: a compact binary form with the
// attributes in key order, so that equal messages encode equally.
func encodeMessage(m Message) []byte {
	b := make([]byte, 0, len(m.Data)+len(m.OrderingKey)+len(m.ID)+32)
	b = appendBytes(b, m.Data)
	b = binary.AppendUvarint(b, uint64(len(m.Attributes)))
	keys := make([]string, 0, len(m.Attributes))
	for k := range m.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, []byte(m.Attributes[k]))
	}
	b = appendBytes(b, []byte(m.OrderingKey))
	b = appendBytes(b, []byte(m.ID))
	var ts int64
	if !m.PublishTime.IsZero() {
		ts = m.PublishTime.UnixNano()
	}
	return binary.AppendVarint(b, ts)
}

var errCorruptMessage = errors.New("pubsubio: corrupt encoded Message")

func decodeMessage(b []byte) (Message, error) {
	var m Message
	d := decoder{b: b}
	m.Data = d.bytes()
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return m, errCorruptMessage
		}
		m.Attributes = make(map[string]string, n)
		for range n {
			k := string(d.bytes())
			m.Attributes[k] = string(d.bytes())
		}
	}
	m.OrderingKey = string(d.bytes())
	m.ID = string(d.bytes())
	ts, n := binary.Varint(d.b)
	if d.err != nil || n <= 0 || n != len(d.b) {
		return Message{}, fmt.Errorf("%w: bad publish time", errCorruptMessage)
	}
	if ts != 0 {
		m.PublishTime = time.Unix(0, ts).UTC()
	}
	return m, nil
}

func appendBytes(b, field []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(field)))
	return append(b, field...)
}

// decoder reads the fields encodeMessage wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.err = errCorruptMessage
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorruptMessage
		return nil
	}
	field := d.b[:n:n]
	d.b = d.b[n:]
	return field
}
