package main

import (
	"encoding/base64"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/pubsubio"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

func init() {
	register.DoFn1x1[mqttio.Message, pubsubio.Message](&toPubSubFn{})
	register.Function1x1(toPublication)
	register.DoFn2x1[beam.EventTime, mqttio.PublishError, rows.DeadLetter](&deadLetterFn{})
}

// Attributes of the Pub/Sub messages the bridge publishes; mqtt_topic also
// routes Pub/Sub messages to MQTT.
const (
	AttrTopic    = "mqtt_topic"
	AttrQoS      = "mqtt_qos"
	AttrRetained = "mqtt_retained"
)

// Attributes of the MQTT 5 properties, both ways; the other MQTT 5 user
// properties are attributes of their own names (see userAttribute).
const (
	AttrContentType   = "mqtt_content_type"
	AttrResponseTopic = "mqtt_response_topic"
	// AttrCorrelationData holds the correlation data in base64 (standard,
	// padded): attributes are text, correlation data bytes.
	AttrCorrelationData = "mqtt_correlation_data"
	// AttrMessageExpiry is the message expiry interval in whole seconds.
	AttrMessageExpiry = "mqtt_message_expiry"
	// AttrUserPrefix escapes a user property whose name is not a Pub/Sub
	// attribute of its own: one starting with "mqtt_" (the bridge's) or
	// "goog" (Pub/Sub's).
	AttrUserPrefix = "mqtt_user_"
	attrPrefix     = "mqtt_"
)

// userAttribute is the attribute of the user property named name.
func userAttribute(name string) string {
	if name == "" || strings.HasPrefix(name, attrPrefix) || strings.HasPrefix(name, "goog") {
		return AttrUserPrefix + name
	}
	return name
}

// toPubSubFn turns an MQTT message into a Pub/Sub message: the payload as
// data, the topic and QoS (and the retained flag when set) as attributes,
// the MQTT 5 properties as attributes too (see properties), and the
// ordering key of the flags.
type toPubSubFn struct {
	// OrderingKey is none, device_id or topic.
	OrderingKey string
	// DeviceTopic is the template of the device id, for OrderingKey
	// device_id.
	DeviceTopic string

	levels []string
}

// Setup splits the device template into its levels.
func (fn *toPubSubFn) Setup() {
	fn.levels = strings.Split(fn.DeviceTopic, "/")
}

// ProcessElement converts one message.
func (fn *toPubSubFn) ProcessElement(m mqttio.Message) pubsubio.Message {
	attrs := map[string]string{AttrTopic: m.Topic, AttrQoS: strconv.Itoa(int(m.QoS))}
	if m.Retained {
		attrs[AttrRetained] = "true"
	}
	properties(m, attrs)
	out := pubsubio.Message{Data: m.Payload, Attributes: attrs}
	switch fn.OrderingKey {
	case orderTopic:
		out.OrderingKey = m.Topic
	case orderDevice:
		out.OrderingKey = deviceID(fn.levels, m.Topic)
	}
	return out
}

// deviceID returns the level of topic at the {device_id} level of template
// (split into levels), or "" when topic does not match the template: literal
// levels must be equal, '+' matches one level, a last '#' any number.
func deviceID(template []string, topic string) string {
	levels := strings.Split(topic, "/")
	id := ""
	for i, t := range template {
		if t == "#" {
			return id
		}
		if i >= len(levels) {
			return ""
		}
		switch t {
		case "{device_id}":
			id = levels[i]
		case "+":
		default:
			if levels[i] != t {
				return ""
			}
		}
	}
	if len(levels) != len(template) {
		return ""
	}
	return id
}

// properties adds the MQTT 5 properties of m to attrs: content type,
// response topic, correlation data and message expiry as mqtt_ attributes,
// and each user property as an attribute of its name (escaped by
// userAttribute; of a name given more than once, the first value).
func properties(m mqttio.Message, attrs map[string]string) {
	for _, u := range m.UserProperties {
		if name := userAttribute(u.Name); attrs[name] == "" {
			attrs[name] = u.Value
		}
	}
	set := func(name, v string) {
		if v != "" {
			attrs[name] = v
		}
	}
	set(AttrContentType, m.ContentType)
	set(AttrResponseTopic, m.ResponseTopic)
	if m.CorrelationData != nil {
		attrs[AttrCorrelationData] = base64.StdEncoding.EncodeToString(m.CorrelationData)
	}
	if m.MessageExpiry > 0 {
		attrs[AttrMessageExpiry] = strconv.FormatInt(int64((m.MessageExpiry+time.Second-1)/time.Second), 10)
	}
}

// toPublication turns a Pub/Sub message into an MQTT publication: the data
// as payload, to the topic of its mqtt_topic attribute, or to the topic
// template filled from its attributes (mqttio.Write refuses unsafe topics).
// With MQTT 5 the attributes become properties, the reverse of properties:
// every attribute not starting with "mqtt_" is a user property (in the
// order of the names), as are the mqtt_user_ ones without the prefix. A
// correlation data attribute that is not base64 is taken as it is, an
// expiry that is not a number of seconds is ignored.
func toPublication(m pubsubio.Message) mqttio.Publication {
	p := mqttio.Publication{Topic: m.Attributes[AttrTopic], Fields: m.Attributes, Payload: m.Data}
	for _, name := range slices.Sorted(maps.Keys(m.Attributes)) {
		v := m.Attributes[name]
		switch {
		case strings.HasPrefix(name, AttrUserPrefix):
			p.UserProperties = append(p.UserProperties, mqttio.UserProperty{Name: strings.TrimPrefix(name, AttrUserPrefix), Value: v})
		case !strings.HasPrefix(name, attrPrefix):
			p.UserProperties = append(p.UserProperties, mqttio.UserProperty{Name: name, Value: v})
		}
	}
	p.ContentType, p.ResponseTopic = m.Attributes[AttrContentType], m.Attributes[AttrResponseTopic]
	if c, ok := m.Attributes[AttrCorrelationData]; ok {
		b, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			b = []byte(c)
		}
		p.CorrelationData = b
	}
	if s, err := strconv.ParseUint(m.Attributes[AttrMessageExpiry], 10, 32); err == nil && s > 0 {
		p.MessageExpiry = time.Duration(s) * time.Second
	}
	return p
}

// Dead letters of the Pub/Sub -> MQTT direction.
const (
	// StageBridge is the stage of messages the bridge did not publish.
	StageBridge = "bridge"
	// ReasonUnsafeTopic is the reason of a message whose MQTT topic is
	// missing, has a wildcard, an empty level or NUL.
	ReasonUnsafeTopic = "unsafe_topic"
	// ReasonBrokerRefused is the reason of a message the broker refused
	// (MQTT 5: not authorized, quota exceeded, ...; the detail names it), or
	// would have refused (packet too large).
	ReasonBrokerRefused = "broker_refused"
)

// deadLetterFn makes the dead letter of a message mqttio.Write refused.
type deadLetterFn struct {
	// Subscription is where the messages came from.
	Subscription string
}

// ProcessElement makes one dead letter; its time is the message's publish
// time.
func (fn *deadLetterFn) ProcessElement(at beam.EventTime, e mqttio.PublishError) rows.DeadLetter {
	reason := ReasonUnsafeTopic
	if e.ReasonCode != 0 {
		reason = ReasonBrokerRefused
	}
	return rows.DeadLetter{
		Stage: StageBridge, Topic: fn.Subscription, Payload: e.Publication.Payload,
		ReceivedAt: at.ToTime().UTC(), Reason: reason, Detail: e.Reason,
	}
}
