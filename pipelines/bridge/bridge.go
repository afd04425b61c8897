package main

import (
	"strconv"
	"strings"

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

// toPubSubFn turns an MQTT message into a Pub/Sub message: the payload as
// data, the topic and QoS (and the retained flag when set) as attributes,
// and the ordering key of the flags.
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

// toPublication turns a Pub/Sub message into an MQTT publication: the data
// as payload, to the topic of its mqtt_topic attribute, or to the topic
// template filled from its attributes. mqttio.Write refuses unsafe topics.
func toPublication(m pubsubio.Message) mqttio.Publication {
	return mqttio.Publication{Topic: m.Attributes[AttrTopic], Fields: m.Attributes, Payload: m.Data}
}

// Dead letters of the Pub/Sub -> MQTT direction.
const (
	// StageBridge is the stage of messages the bridge did not publish.
	StageBridge = "bridge"
	// ReasonUnsafeTopic is the reason of a message whose MQTT topic is
	// missing, has a wildcard, an empty level or NUL.
	ReasonUnsafeTopic = "unsafe_topic"
)

// deadLetterFn makes the dead letter of a message mqttio.Write refused.
type deadLetterFn struct {
	// Subscription is where the messages came from.
	Subscription string
}

// ProcessElement makes one dead letter; its time is the message's publish
// time.
func (fn *deadLetterFn) ProcessElement(at beam.EventTime, e mqttio.PublishError) rows.DeadLetter {
	return rows.DeadLetter{
		Stage: StageBridge, Topic: fn.Subscription, Payload: e.Publication.Payload,
		ReceivedAt: at.ToTime().UTC(), Reason: ReasonUnsafeTopic, Detail: e.Reason,
	}
}
