// Command commands relays commands from backend services to devices: it
// reads them from a Pub/Sub subscription, validates each one, publishes the
// valid ones to the device's MQTT command topic at QoS 1, and writes an
// audit row per command (sent, or rejected and why) to BigQuery or local
// JSON lines.
//
//	go run ./pipelines/commands --broker=ssl://broker:8883 \
//	    --input_subscription=projects/P/subscriptions/device-commands --output_dir=out
//	commands --runner=dataflow --project=P --region=R --staging_location=gs://B/staging \
//	    --broker=ssl://broker:8883 --input_subscription=projects/P/subscriptions/device-commands \
//	    --output_table=P:devices.command_audit
//
// # Commands
//
// Each Pub/Sub message's data is one JSON object:
//
//	{"device_id": "pump-7", "command": {"action": "reboot"}, "id": "c-123"}
//
// device_id (required) is the device, one topic level: not empty, no '/',
// '+', '#' or NUL. command (required) is a JSON object, passed on as is. id
// (optional, default the Pub/Sub message id) identifies the command. With
// --mqtt_version=5 a command can ask for an answer: response_topic
// (optional) becomes the publication's response topic, and
// correlation_data (optional, a string; default the id) its correlation
// data, for the device to answer on that topic. Other fields are ignored. The device receives, on --command_topic (default
// devices/{device_id}/commands):
//
//	{"id": "c-123", "device_id": "pump-7", "command": {"action": "reboot"}}
//
// Delivery is at least once (Pub/Sub and MQTT QoS 1 both redeliver after
// failures), so a device should ignore an id it has already executed.
//
// # Audit
//
// One rows.Command per command in the commands table (or
// commands.jsonl): status "sent" with the topic and payload published (the
// MQTT writer retries until the broker acknowledges it, or the job fails),
// "rejected" with a reason whose first word is a code (not_json,
// no_device_id, unsafe_device_id, no_command, bad_id, bad_response) and the
// data received, or "failed" when the MQTT writer did not publish it (an
// unsafe topic, or the broker's MQTT 5 refusal, with its reason code). Rule
// holds the subscription the command came from; issued_at is its Pub/Sub
// publish time.
//
// Run it with --help for every flag.
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
	ctx, stop := jobflags.Start("commands", &cfg.Control, cfg.validate)
	defer stop()
	jobflags.Exit("commands", &cfg.Control, run(ctx, &cfg))
}

// build is the job: read -> validate -> publish, with an audit row per
// command.
func build(cfg *config, env *environment) (*beam.Pipeline, error) {
	return jobflags.Build(func(s beam.Scope) {
		out := env.outputs

		// Read: the commands, acknowledged to Pub/Sub once the bundle that read
		// them has committed.
		messages := pubsubio.Read(s, cfg.InputSubscription, cfg.PubSubReadOptions(env.PubSubEndpoint, cfg.Readers)...)
		progress.CountLocal(s, env.local, progressIn, messages)

		// Validate: JSON with a topic-safe device id and a command object, or
		// an audit row saying why not.
		valid, audit := beam.ParDo2(s, &validateFn{Topic: cfg.CommandTopic, Source: cfg.InputSubscription}, messages)

		// Publish: to each device's command topic, at least once.
		failed := mqttio.Write(s, env.Brokers, valid, cfg.MQTT.WriteOptions()...)

		// Audit: sent, rejected and failed commands.
		out.Write(s, rows.CommandsTable, audit, beam.ParDo(s, &failedFn{Source: cfg.InputSubscription}, failed))
		out.Finish(s)
	})
}
