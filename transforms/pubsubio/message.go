package pubsubio

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/mqttbeam/mqttbeam/internal/wire"
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

// encodeMessage is Message's Beam coder: a compact binary form (internal/wire)
// with the attributes in key order, so that equal messages encode equally.
func encodeMessage(m Message) []byte {
	b := make([]byte, 0, len(m.Data)+len(m.OrderingKey)+len(m.ID)+32)
	b = wire.AppendBytes(b, m.Data)
	b = wire.AppendUvarint(b, uint64(len(m.Attributes)))
	for _, k := range slices.Sorted(maps.Keys(m.Attributes)) {
		b = wire.AppendString(wire.AppendString(b, k), m.Attributes[k])
	}
	b = wire.AppendString(b, m.OrderingKey)
	b = wire.AppendString(b, m.ID)
	var ts int64
	if !m.PublishTime.IsZero() {
		ts = m.PublishTime.UnixNano()
	}
	return wire.AppendVarint(b, ts)
}

var errCorruptMessage = errors.New("pubsubio: corrupt encoded Message")

func decodeMessage(b []byte) (Message, error) {
	r := wire.NewReader(b)
	m := Message{Data: r.Bytes(), Attributes: r.StringMap()}
	m.OrderingKey = r.String()
	m.ID = r.String()
	ts := r.Varint()
	if err := r.Err(); err != nil {
		return Message{}, fmt.Errorf("%w: %v", errCorruptMessage, err)
	}
	if ts != 0 {
		m.PublishTime = time.Unix(0, ts).UTC()
	}
	return m, nil
}
