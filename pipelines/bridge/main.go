// Command bridge moves messages between MQTT and Pub/Sub, in the direction
// --direction names:
//
//   - mqtt_to_pubsub (the default): the messages of MQTT topic filters
//     (wildcards allowed, several brokers of a cluster) become Pub/Sub
//     messages with the payload as data and the attributes mqtt_topic (the
//     concrete topic), mqtt_qos and, for retained messages, mqtt_retained;
//     the ordering key is none, the device id (--device_topic) or the topic.
//   - pubsub_to_mqtt: Pub/Sub messages are published to the MQTT topic of
//     their mqtt_topic attribute, or of --mqtt_topic_template filled from
//     their attributes. A message whose topic would be unsafe (missing, a
//     wildcard, an empty level, NUL) is never published: it becomes a dead
//     letter with the reason, in BigQuery or local JSON lines.
//
// One binary (and one flex template) serves both directions because they
// share the connection flags and deployment; flags of the other direction
// are refused, naming them. Run one job per direction.
//
//	go run ./pipelines/bridge --broker=ssl://broker:8883 --topic='devices/+/telemetry/#' \
//	    --output_topic=projects/P/topics/telemetry --ordering_key=device_id
//	go run ./pipelines/bridge --direction=pubsub_to_mqtt --broker=ssl://broker:8883 \
//	    --input_subscription=projects/P/subscriptions/to-devices --mqtt_topic_template='devices/{device_id}/commands'
//
// Delivery is at least once both ways: duplicates are possible after
// failures, losses are not. Run it with --help for every flag.
package main

import (
	"flag"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/progress"
	"github.com/mqttbeam/mqttbeam/transforms/pubsubio"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

func main() {
	var cfg config
	cfg.register(flag.CommandLine)
	ctx, stop := jobflags.Start("bridge", &cfg.Control, cfg.validate)
	defer stop()
	jobflags.Exit("bridge", &cfg.Control, run(ctx, &cfg))
}

// build is the job of the direction the flags name.
func build(cfg *config, env *environment) (*beam.Pipeline, error) {
	return jobflags.Build(func(s beam.Scope) {
		if cfg.Direction == toPubSub {
			buildToPubSub(s, cfg, env)
		} else {
			buildToMQTT(s, cfg, env)
		}
	})
}

// buildToPubSub is MQTT -> Pub/Sub: read -> convert -> publish.
func buildToPubSub(s beam.Scope, cfg *config, env *environment) {
	// Read: every message of the topic filters, acknowledged to the broker
	// once the bundle that read it has committed.
	messages := mqttio.Read(s, env.Brokers, cfg.Topics, cfg.readOptions()...)
	progress.CountLocal(s, env.local, progressIn, messages)

	// Convert: payload as data, topic and QoS as attributes, ordering key.
	converted := beam.ParDo(s, &toPubSubFn{OrderingKey: cfg.OrderingKey, DeviceTopic: cfg.DeviceTopic}, messages)
	progress.CountLocal(s, env.local, progressOut, converted)

	// Publish: batched, awaited before the bundle commits.
	pubsubio.Write(s, cfg.OutputTopic, converted, cfg.pubsubWriteOptions(env.PubSubEndpoint)...)
}

// buildToMQTT is Pub/Sub -> MQTT: read -> route -> publish, with the
// messages whose topic is unsafe as dead letters.
func buildToMQTT(s beam.Scope, cfg *config, env *environment) {
	// Read: acknowledged to Pub/Sub once the bundle that read them has
	// committed.
	messages := pubsubio.Read(s, cfg.InputSubscription, cfg.PubSubReadOptions(env.PubSubEndpoint, cfg.Readers)...)
	progress.CountLocal(s, env.local, progressIn, messages)

	// Route and publish: to the topic of the attributes; mqttio.Write
	// refuses unsafe topics instead of publishing them.
	publications := beam.ParDo(s, toPublication, messages)
	progress.CountLocal(s, env.local, progressOut, publications)
	refused := mqttio.Write(s, env.Brokers, publications, cfg.writeOptions()...)

	// Dead letters: the refused messages, with the reason.
	env.outputs.Write(s, rows.DeadLettersTable, beam.ParDo(s, &deadLetterFn{Subscription: cfg.InputSubscription}, refused))
	env.outputs.Finish(s)
}

// readOptions are the mqttio.Read options of the flags.
func (c *config) readOptions() []mqttio.ReadOption {
	opts := c.MQTT.ReadOptions(mqttio.Readers(c.Readers))
	if c.MaxRecords > 0 {
		opts = append(opts, mqttio.MaxRecords(c.MaxRecords))
	}
	if c.Duration > 0 {
		opts = append(opts, mqttio.MaxReadTime(c.Duration))
	}
	return opts
}

// writeOptions are the mqttio.Write options of the flags.
func (c *config) writeOptions() []mqttio.WriteOption {
	opts := c.MQTT.WriteOptions()
	if c.MQTTTopicTemplate != "" {
		opts = append(opts, mqttio.TopicTemplate(c.MQTTTopicTemplate))
	}
	return opts
}

// pubsubWriteOptions are the pubsubio.Write options of the flags.
func (c *config) pubsubWriteOptions(endpoint string) []pubsubio.WriteOption {
	opts := []pubsubio.WriteOption{pubsubio.Ordering(c.OrderingKey != orderNone)}
	if endpoint != "" {
		opts = append(opts, pubsubio.Endpoint(endpoint))
	}
	return opts
}
