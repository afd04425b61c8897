// Command telemetry is the main job: it reads device telemetry from an MQTT
// broker cluster, windows and aggregates it per device and metric, enriches
// the aggregates with a device registry and writes them to BigQuery (or local
// JSON lines), while threshold rules turn aggregates into commands published
// back to the devices.
//
//	go run ./pipelines/telemetry                      # embedded broker, simulated fleet, ./out
//	go run ./pipelines/telemetry --broker=ssl://broker:8883 --output_dir=out
//	telemetry --runner=dataflow --project=P --region=R --staging_location=gs://B/staging \
//	    --broker=ssl://broker:8883 --output_table=P:telemetry.aggregates
//
// Run it with --help for every flag. One message's path through the job is
// build, below, read top to bottom.
package main

import (
	"flag"
	"log"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/progress"
	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
	"github.com/mqttbeam/mqttbeam/transforms/enrich"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
	"github.com/mqttbeam/mqttbeam/transforms/rules"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
)

func init() {
	register.Function1x1(unknownDevice)
	register.Function1x1(ruleInput)
}

func main() {
	var cfg config
	cfg.register(flag.CommandLine)
	ctx, stop := jobflags.Start("telemetry", &cfg.Control, cfg.validate)
	defer stop()
	if cfg.Runner == jobflags.Direct {
		// The deprecated direct runner has no state or timers.
		log.Print("telemetry: the direct runner cannot run this job (its late-data check and rule cooldowns need state and timers): running it on prism, also in this process")
		if err := jobflags.SwitchRunner(jobflags.Prism); err != nil {
			jobflags.Exit("telemetry", &cfg.Control, err)
		}
		cfg.Runner = jobflags.Prism
	}
	jobflags.Exit("telemetry", &cfg.Control, run(ctx, &cfg))
}

// build builds the job's pipeline (buildJob).
func build(cfg *config, env *environment) (*beam.Pipeline, error) {
	return jobflags.Build(func(s beam.Scope) {
		buildJob(s, cfg, env)
	})
}

// buildJob is the job. A message goes read -> parse -> window and aggregate
// -> enrich -> write, and the rules turn aggregates into commands beside it.
func buildJob(s beam.Scope, cfg *config, env *environment) {
	out := env.outputs

	// Read: every message of the topic filters, acknowledged to the broker
	// once the bundle that read it has committed.
	messages := mqttio.Read(s, env.Brokers, cfg.Topics, cfg.readOptions()...)
	progress.CountLocal(s, env.local, progressIn, messages)

	// Parse: payloads (JSON, batches, plain values, Sparkplug B, by topic)
	// into readings stamped with their event time; everything else into
	// dead letters with the reason. Sparkplug B edge nodes whose state is
	// unknown are asked to publish their BIRTHs again (--sparkplug_rebirth).
	readings, parseFailures, rebirths := telemetry.ParseWithCommands(s, messages, cfg.parseOptions()...)
	out.Write(s, rows.DeadLettersTable, beam.ParDo(s, rows.FromParseFailure, parseFailures))
	out.Write(s, rows.ReadingsTable, beam.ParDo(s, rows.FromReading, readings))
	if cfg.SparkplugRebirth > 0 {
		failed := mqttio.Write(s, env.Brokers, rebirths, cfg.rebirthWriteOptions()...)
		out.Write(s, rows.CommandsTable,
			beam.ParDo(s, rows.FromPublication, rebirths),
			beam.ParDo(s, rows.FromPublishError, failed))
	}

	// Window and aggregate: per device, metric and window, with late panes
	// for late data within the allowed lateness; later data is a dead letter.
	aggregates, tooLate := aggregate.PerWindowWithLate(s, readings, cfg.windowOptions()...)
	out.Write(s, rows.DeadLettersTable, beam.ParDo(s, rows.FromTooLate, tooLate))

	// Enrich: the device registry as a side input; unknown devices are
	// kept and flagged.
	var enriched beam.PCollection
	if env.registry != "" {
		enriched = enrich.Join(s, aggregates, env.registry, cfg.refreshOptions()...)
	} else {
		enriched = beam.ParDo(s, unknownDevice, aggregates)
	}
	out.Write(s, rows.AggregatesTable, beam.ParDo(s, rows.FromEnriched, enriched))

	// Rules -> commands: threshold rules on the aggregates, published to
	// the devices' command topics, each audited.
	if len(env.rules) > 0 {
		commands, rejected := rules.Evaluate(s, beam.ParDo(s, ruleInput, enriched), env.rules,
			rules.CommandTopic(cfg.CommandTopic), rules.AllowedLateness(cfg.AllowedLateness))
		failed := mqttio.Write(s, env.Brokers, commands, cfg.writeOptions()...)
		out.Write(s, rows.CommandsTable,
			beam.ParDo(s, rows.FromPublication, commands),
			beam.ParDo(s, rows.FromRejected, rejected),
			beam.ParDo(s, rows.FromPublishError, failed))
	}

	// Dead letters: of the parser, the late check and the tables' sinks.
	out.Finish(s)
}

// readOptions are the mqttio.Read options of the flags. The watermark moves
// in steps that the windows end on, which closes them as early as an exact
// watermark and spares prism a rescan of the open windows per bundle.
func (c *config) readOptions() []mqttio.ReadOption {
	step, err := aggregate.WatermarkStep(c.windowOptions()...)
	if err != nil { // validate checked the window flags
		panic(err)
	}
	opts := c.MQTT.ReadOptions(mqttio.Readers(c.Readers), mqttio.MaxOutOfOrderness(c.MaxOutOfOrderness),
		mqttio.WatermarkStep(step))
	if c.MaxRecords > 0 {
		opts = append(opts, mqttio.MaxRecords(c.MaxRecords))
	}
	if c.Duration > 0 {
		opts = append(opts, mqttio.MaxReadTime(c.Duration))
	}
	return opts
}

// writeOptions are the mqttio.Write options of the command publisher.
func (c *config) writeOptions() []mqttio.WriteOption {
	return c.MQTT.WriteOptions(mqttio.ClientID(c.MQTT.ClientID + "-commands"))
}

// rebirthWriteOptions are the mqttio.Write options of the Sparkplug B
// rebirth requests: their topics are built from the NCMD template, whose
// ids (from topics the job read) Write checks.
func (c *config) rebirthWriteOptions() []mqttio.WriteOption {
	return c.MQTT.WriteOptions(mqttio.ClientID(c.MQTT.ClientID+"-rebirth"), rebirthTopic())
}

// refreshOptions are the registry's refresh schedule: none for a read
// bounded by record count, until the end of a read bounded by time.
func (c *config) refreshOptions() []enrich.Option {
	switch {
	case c.Duration > 0:
		return []enrich.Option{enrich.Refresh(c.RegistryRefresh), enrich.RefreshUntil(c.start.Add(c.Duration))}
	case c.MaxRecords > 0:
		return nil
	default:
		return []enrich.Option{enrich.Refresh(c.RegistryRefresh)}
	}
}

// windowOptions are the aggregate options of the flags.
func (c *config) windowOptions() []aggregate.Option {
	var w aggregate.Option
	switch c.WindowType {
	case "sliding":
		w = aggregate.Sliding(c.Window, c.WindowPeriod)
	case "session":
		w = aggregate.Session(c.Window)
	default:
		w = aggregate.Fixed(c.Window)
	}
	return []aggregate.Option{w, aggregate.AllowedLateness(c.AllowedLateness)}
}

// ruleInput is what the rules see of an enriched aggregate: the aggregate
// and the device's attributes (none for an unknown device, so that only
// rules without a Scope apply to it).
func ruleInput(e enrich.Enriched) rules.Input {
	return rules.Input{Aggregate: e.Aggregate, Device: e.Device}
}

// unknownDevice is the enrichment of an aggregate when the job has no
// registry.
func unknownDevice(a aggregate.Aggregate) enrich.Enriched {
	return enrich.Enriched{Aggregate: a}
}
