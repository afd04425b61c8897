package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
)

// Directions of the bridge.
const (
	toPubSub = "mqtt_to_pubsub"
	toMQTT   = "pubsub_to_mqtt"
)

// Ordering keys of the MQTT -> Pub/Sub direction.
const (
	orderNone   = "none"
	orderDevice = "device_id"
	orderTopic  = "topic"
)

// config is the job's flags, validated.
type config struct {
	MQTT      jobflags.MQTT
	Direction string
	// PubSubEndpoint points the Pub/Sub clients at a local server.
	PubSubEndpoint string
	Readers        int

	// MQTT -> Pub/Sub.
	Topics      jobflags.List
	OutputTopic string
	OrderingKey string
	DeviceTopic string

	// Pub/Sub -> MQTT.
	InputSubscription string
	MQTTTopicTemplate string
	DeadLetterTable   string
	OutputDir         string
	// BigQueryEndpoint points the BigQuery sink at a local server.
	BigQueryEndpoint string

	jobflags.Control
}

// register defines the job's flags on fs.
func (c *config) register(fs *flag.FlagSet) {
	c.MQTT.Register(fs, "mqttbeam-bridge", true)
	fs.StringVar(&c.Direction, "direction", toPubSub, "mqtt_to_pubsub: MQTT messages to a Pub/Sub topic; pubsub_to_mqtt: Pub/Sub messages to MQTT topics")
	fs.StringVar(&c.PubSubEndpoint, "pubsub_endpoint", "", jobflags.PubSubEndpointUsage)
	fs.IntVar(&c.Readers, "readers", 1, "Parallel readers: MQTT clients on a shared subscription ($share/...), or Pub/Sub streaming pulls")

	fs.Var(&c.Topics, "topic", "mqtt_to_pubsub: topic filters to read, comma-separated or repeated; wildcards allowed, e.g. devices/+/telemetry/# (required with --direction=mqtt_to_pubsub; devices/+/telemetry/# on the embedded broker)")
	fs.StringVar(&c.OutputTopic, "output_topic", "", "mqtt_to_pubsub: Pub/Sub topic to publish to, projects/PROJECT/topics/TOPIC (required with --direction=mqtt_to_pubsub; default with --pubsub_endpoint=embedded: `+localTopic+`)")
	fs.StringVar(&c.OrderingKey, "ordering_key", orderNone, "mqtt_to_pubsub: ordering key of the Pub/Sub messages: none, device_id (from --device_topic) or topic")
	fs.StringVar(&c.DeviceTopic, "device_topic", "devices/{device_id}/#", "mqtt_to_pubsub: topic template that names the device id level, for --ordering_key=device_id")

	fs.StringVar(&c.InputSubscription, "input_subscription", "", "pubsub_to_mqtt: Pub/Sub subscription to read, projects/PROJECT/subscriptions/SUBSCRIPTION (required with --direction=pubsub_to_mqtt; default with --pubsub_endpoint=embedded: `+localSubscription+`)")
	fs.StringVar(&c.MQTTTopicTemplate, "mqtt_topic_template", "", "pubsub_to_mqtt: MQTT topic template filled from the message's attributes, e.g. devices/{device_id}/commands (default: the mqtt_topic attribute)")
	fs.StringVar(&c.DeadLetterTable, "dead_letter_table", "", "pubsub_to_mqtt: BigQuery table of the messages not published (unsafe topics), PROJECT:DATASET.TABLE (required with pubsub_to_mqtt on Dataflow)")
	fs.StringVar(&c.BigQueryEndpoint, "bigquery_endpoint", "", `pubsub_to_mqtt, local runs only: "embedded" writes the dead letters to an in-process BigQuery test server, or REST_URL,GRPC_HOST:PORT of a local server`)
	fs.StringVar(&c.OutputDir, "output_dir", "", "Local directory for JSON lines: the dead letters (pubsub_to_mqtt), and what the job sent to the embedded Pub/Sub server or broker (default ./out when no --dead_letter_table)")

	c.Control.Register(fs, "Stop reading after this long", "messages")
}

// The Pub/Sub names of a local run on the embedded Pub/Sub server.
const (
	localTopic        = "projects/mqttbeam-local/topics/telemetry"
	localSubscription = "projects/mqttbeam-local/subscriptions/to-devices"
)

// validate checks the flags and fills in defaults that depend on others.
func (c *config) validate() error {
	errs := c.Control.Validate()
	local := jobflags.IsLocal(c.Runner)
	if c.Direction == toPubSub {
		jobflags.LocalPubSub(local, &c.PubSubEndpoint, &c.OutputTopic, localTopic)
		if len(c.Topics) == 0 && c.MQTT.IsEmbedded() {
			c.Topics = jobflags.List{"devices/+/telemetry/#"}
		}
	} else {
		jobflags.LocalPubSub(local, &c.PubSubEndpoint, &c.InputSubscription, localSubscription)
	}
	errs = append(errs,
		c.MQTT.Validate(local),
		jobflags.OneOf("direction", c.Direction, toPubSub, toMQTT),
		jobflags.LocalEndpoint("pubsub_endpoint", c.PubSubEndpoint, local),
	)
	if c.Readers < 1 {
		errs = append(errs, jobflags.Errorf("readers", "%d is not a positive number", c.Readers))
	}
	switch c.Direction {
	case toPubSub:
		errs = append(errs, c.validateToPubSub()...)
	case toMQTT:
		errs = append(errs, c.validateToMQTT()...)
	}
	return errors.Join(errs...)
}

// validateToPubSub checks the flags of the MQTT -> Pub/Sub direction.
func (c *config) validateToPubSub() []error {
	errs := []error{
		jobflags.PubSubTopic("output_topic", c.OutputTopic),
		jobflags.OneOf("ordering_key", c.OrderingKey, orderNone, orderDevice, orderTopic),
		jobflags.DeviceTopic("device_topic", c.DeviceTopic),
		c.onlyFor(toMQTT, map[string]bool{"input_subscription": c.InputSubscription != "", "mqtt_topic_template": c.MQTTTopicTemplate != "",
			"dead_letter_table": c.DeadLetterTable != "", "bigquery_endpoint": c.BigQueryEndpoint != ""}),
	}
	switch {
	case !c.local() && c.OutputDir != "":
		errs = append(errs, jobflags.Errorf("output_dir", "is for local runs only"))
	case c.PubSubEndpoint == jobflags.Embedded && c.OutputDir == "":
		c.OutputDir = "out" // what the embedded server received
	}
	if len(c.Topics) == 0 {
		errs = append(errs, jobflags.Errorf("topic", "is required: topic filters such as devices/+/telemetry/#"))
	}
	for _, t := range c.Topics {
		if err := mqttio.ValidateFilter(t); err != nil {
			errs = append(errs, jobflags.Errorf("topic", "%v", err))
		}
	}
	if c.OutputTopic == "" {
		errs = append(errs, jobflags.Errorf("output_topic", "is required: projects/PROJECT/topics/TOPIC"))
	}
	return errs
}

// validateToMQTT checks the flags of the Pub/Sub -> MQTT direction.
func (c *config) validateToMQTT() []error {
	errs := []error{
		jobflags.PubSubSubscription("input_subscription", c.InputSubscription),
		jobflags.Table("dead_letter_table", c.DeadLetterTable),
		c.onlyFor(toPubSub, map[string]bool{"topic": len(c.Topics) > 0, "output_topic": c.OutputTopic != "",
			"ordering_key": c.OrderingKey != orderNone}),
	}
	if c.InputSubscription == "" {
		errs = append(errs, jobflags.Errorf("input_subscription", "is required: projects/PROJECT/subscriptions/SUBSCRIPTION"))
	}
	if c.MQTTTopicTemplate != "" {
		errs = append(errs, jobflags.TopicTemplate("mqtt_topic_template", c.MQTTTopicTemplate))
	}
	dir, err := jobflags.ValidateOutputs(c.Runner, "dead_letter_table", c.DeadLetterTable, c.OutputDir, c.BigQueryEndpoint)
	c.OutputDir = dir
	return append(errs, err)
}

// local reports whether the job runs on a local runner.
func (c *config) local() bool { return jobflags.IsLocal(c.Runner) }

// onlyFor reports the flags of set (name -> given) that were given although
// they apply only to the other direction.
func (c *config) onlyFor(direction string, set map[string]bool) error {
	var errs []error
	for name, given := range set {
		if given {
			errs = append(errs, jobflags.Errorf(name, "applies only to --direction=%s", direction))
		}
	}
	return errors.Join(errs...)
}

// String describes the job for its start-up line (no secrets).
func (c *config) String() string {
	if c.Direction == toPubSub {
		return fmt.Sprintf("bridge on %s: MQTT %s, topics %v -> Pub/Sub %s (ordering key %s)",
			c.Runner, c.MQTT.String(), c.Topics, c.OutputTopic, c.OrderingKey)
	}
	topic := "the mqtt_topic attribute"
	if c.MQTTTopicTemplate != "" {
		topic = c.MQTTTopicTemplate
	}
	return fmt.Sprintf("bridge on %s: Pub/Sub %s -> MQTT %s, topic %s, dead letters to %s",
		c.Runner, c.InputSubscription, c.MQTT.String(), topic, jobflags.OutputsString(c.OutputDir, c.DeadLetterTable))
}
