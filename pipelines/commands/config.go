package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
)

// config is the job's flags, validated.
type config struct {
	MQTT jobflags.MQTT

	InputSubscription string
	// PubSubEndpoint points the Pub/Sub client at a local server.
	PubSubEndpoint string
	Readers        int
	CommandTopic   string

	OutputTable     string
	DeadLetterTable string
	OutputDir       string
	// BigQueryEndpoint points the BigQuery sink at a local server.
	BigQueryEndpoint string

	jobflags.Control
}

// register defines the job's flags on fs.
func (c *config) register(fs *flag.FlagSet) {
	c.MQTT.Register(fs, "mqttbeam-commands", true)
	fs.StringVar(&c.InputSubscription, "input_subscription", "", "Pub/Sub subscription of the commands, projects/PROJECT/subscriptions/SUBSCRIPTION; with --pubsub_endpoint=embedded: "+localSubscription+jobflags.RequiredOnDataflow)
	fs.StringVar(&c.PubSubEndpoint, "pubsub_endpoint", "", jobflags.PubSubEndpointUsage)
	fs.IntVar(&c.Readers, "readers", 1, "Parallel Pub/Sub readers (streaming pulls) on the subscription")
	fs.StringVar(&c.CommandTopic, "command_topic", "devices/{device_id}/commands", "Topic template of the commands; {device_id} is the command's device id")

	fs.StringVar(&c.OutputTable, "output_table", "", "BigQuery table of the command audit, PROJECT:DATASET.TABLE"+jobflags.RequiredOnDataflow)
	fs.StringVar(&c.DeadLetterTable, "dead_letter_table", "", "BigQuery table of the rows BigQuery refused (default: --output_table with suffix _dead_letters)")
	fs.StringVar(&c.BigQueryEndpoint, "bigquery_endpoint", "", `Local runs only: "embedded" writes the tables to an in-process BigQuery test server, or REST_URL,GRPC_HOST:PORT of a local server`)
	fs.StringVar(&c.OutputDir, "output_dir", "", "Local directory for newline-delimited JSON output (default ./out when no --output_table)")

	c.Control.Register(fs, "Stop reading after this long", "commands")
}

// localSubscription is the subscription of a local run on the embedded
// Pub/Sub server.
const localSubscription = "projects/mqttbeam-local/subscriptions/device-commands"

// validate checks the flags and fills in defaults that depend on others.
func (c *config) validate() error {
	errs := c.Control.Validate()
	local := jobflags.IsLocal(c.Runner)
	jobflags.LocalPubSub(local, &c.PubSubEndpoint, &c.InputSubscription, localSubscription)
	errs = append(errs,
		c.MQTT.Validate(local),
		jobflags.PubSubSubscription("input_subscription", c.InputSubscription),
		jobflags.LocalEndpoint("pubsub_endpoint", c.PubSubEndpoint, local),
		jobflags.TopicTemplate("command_topic", c.CommandTopic, "device_id"),
		jobflags.Table("output_table", c.OutputTable),
		jobflags.Table("dead_letter_table", c.DeadLetterTable),
	)
	if c.InputSubscription == "" {
		errs = append(errs, jobflags.Errorf("input_subscription", "is required: projects/PROJECT/subscriptions/SUBSCRIPTION"))
	}
	if c.MQTT.QoS == 0 {
		errs = append(errs, jobflags.Errorf("qos", "0 would drop commands a device misses: commands go at least once, QoS 1 or 2"))
	}
	if c.Readers < 1 {
		errs = append(errs, jobflags.Errorf("readers", "%d is not a positive number", c.Readers))
	}
	if c.DeadLetterTable != "" && c.OutputTable == "" {
		errs = append(errs, jobflags.Errorf("output_table", "is required with --dead_letter_table"))
	}
	dir, err := jobflags.ValidateOutputs(c.Runner, "output_table", c.OutputTable, c.OutputDir, c.BigQueryEndpoint)
	c.OutputDir = dir
	if c.OutputTable != "" && c.DeadLetterTable == "" {
		c.DeadLetterTable = c.OutputTable + "_dead_letters"
	}
	return errors.Join(append(errs, err)...)
}

// String describes the job for its start-up line (no secrets).
func (c *config) String() string {
	return fmt.Sprintf("commands job on %s: %s -> %s, topic %s, audit to %s",
		c.Runner, c.InputSubscription, c.MQTT.String(), c.CommandTopic, jobflags.OutputsString(c.OutputDir, c.OutputTable))
}
