package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
)

// config is the job's flags, validated.
type config struct {
	MQTT   jobflags.MQTT
	Topics jobflags.List
	// formats say how payloads are parsed, by topic.
	formats
	Readers int
	// MaxOutOfOrderness holds the watermark back behind the newest receive
	// time, so readings a little older than others are not late.
	MaxOutOfOrderness time.Duration

	Window          time.Duration
	WindowType      string
	WindowPeriod    time.Duration
	AllowedLateness time.Duration

	Registry        string
	RegistryRefresh time.Duration
	Rules           string
	CommandTopic    string

	OutputTable     string
	RawTable        string
	DeadLetterTable string
	CommandTable    string
	OutputDir       string
	// BigQueryEndpoint points the BigQuery sink at a local server.
	BigQueryEndpoint string

	jobflags.Control

	SimulateDevices   int
	SimulateRate      float64
	SimulateMalformed float64
	SimulateLate      float64

	// start is when the flags were validated: the job's start.
	start time.Time
}

// register defines the job's flags on fs.
func (c *config) register(fs *flag.FlagSet) {
	c.MQTT.Register(fs, "mqttbeam-telemetry", true)
	jobflags.ListVar(fs, &c.Topics, "topic", nil,
		"Topic filters to read, comma-separated or repeated; wildcards allowed (devices/+/telemetry/# also reads devices/{id}/telemetry/{kind}). Default "+defaultTopic+
			", or with --payload_format, --format_route or --simulate_profile=mixed the filters of the topic templates (for Sparkplug B, its BIRTH, DATA and DEATH topics)")
	c.formats.register(fs)
	fs.DurationVar(&c.MaxOutOfOrderness, "max_out_of_orderness", 5*time.Second, "How far behind the newest message a reading's time may be without being late (holds windows open this long): device clocks a few seconds apart and delivery jitter under load")
	fs.IntVar(&c.Readers, "readers", 1, "Parallel readers; more than 1 reads through a shared subscription ($share/...) that the broker balances")

	fs.DurationVar(&c.Window, "window", time.Minute, "Window size (fixed, sliding) or gap (session), e.g. 1m")
	fs.StringVar(&c.WindowType, "window_type", "fixed", "fixed, sliding or session")
	fs.DurationVar(&c.WindowPeriod, "window_period", 0, "How often a sliding window starts (required with --window_type=sliding)")
	fs.DurationVar(&c.AllowedLateness, "allowed_lateness", 0, "How long after a window closes late readings still update it (a late pane); later ones become dead letters. On prism, aggregates are enriched only this long after their window closes")

	fs.StringVar(&c.Registry, "registry", "", "Device registry: a JSON lines or CSV file, or bq://PROJECT:DATASET.TABLE (default with --broker=embedded: the simulated fleet's)")
	fs.DurationVar(&c.RegistryRefresh, "registry_refresh", 5*time.Minute, "How often a streaming job reloads the registry")
	fs.StringVar(&c.Rules, "rules", "", "Threshold rules file (JSON or YAML); none: no commands (default with --broker=embedded: a sample overheat rule)")
	fs.StringVar(&c.CommandTopic, "command_topic", "devices/{device_id}/commands", "Topic template of the commands")

	fs.StringVar(&c.OutputTable, "output_table", "", "BigQuery table of the windowed aggregates, PROJECT:DATASET.TABLE"+jobflags.RequiredOnDataflow)
	fs.StringVar(&c.RawTable, "raw_table", "", "BigQuery table of the raw readings (optional)")
	fs.StringVar(&c.DeadLetterTable, "dead_letter_table", "", "BigQuery table of the dead letters (default: --output_table with suffix _dead_letters)")
	fs.StringVar(&c.CommandTable, "command_table", "", "BigQuery table of the commands issued (default: --output_table with suffix _commands)")
	fs.StringVar(&c.BigQueryEndpoint, "bigquery_endpoint", "", `Local runs only: "embedded" writes the tables to an in-process BigQuery test server (no cloud project needed), or REST_URL,GRPC_HOST:PORT of a local server`)
	fs.StringVar(&c.OutputDir, "output_dir", "", "Local directory for newline-delimited JSON output (default ./out when no --output_table)")

	c.Control.Register(fs, "Stop reading after this long and let the final windows fire", "messages")

	fs.IntVar(&c.SimulateDevices, "simulate_devices", 10, "With --broker=embedded: simulated devices")
	fs.Float64Var(&c.SimulateRate, "simulate_rate", 1, "With --broker=embedded: messages per second per device")
	fs.Float64Var(&c.SimulateMalformed, "simulate_malformed", 0.02, "With --broker=embedded: share of malformed messages")
	fs.Float64Var(&c.SimulateLate, "simulate_late", 0.02, "With --broker=embedded: share of late messages")
}

// validate checks the flags and fills in defaults that depend on others.
func (c *config) validate() error {
	c.start = time.Now()
	errs := c.Control.Validate()
	local := jobflags.IsLocal(c.Runner)
	errs = append(errs,
		c.MQTT.Validate(local),
		jobflags.Positive("window", c.Window),
		jobflags.OneOf("window_type", c.WindowType, "fixed", "sliding", "session"),
		jobflags.NonNegative("allowed_lateness", c.AllowedLateness),
		jobflags.NonNegative("max_out_of_orderness", c.MaxOutOfOrderness),
		jobflags.Positive("registry_refresh", c.RegistryRefresh),
	)
	formatErrs := c.formats.validate(c.MQTT.IsEmbedded(), &c.Topics, c.Readers)
	errs = append(errs, formatErrs...)
	if len(c.Topics) == 0 && len(formatErrs) == 0 {
		errs = append(errs, jobflags.Errorf("topic", "is empty"))
	}
	for _, t := range c.Topics {
		if err := mqttio.ValidateFilter(t); err != nil {
			errs = append(errs, jobflags.Errorf("topic", "%v", err))
		}
	}
	if c.Readers < 1 {
		errs = append(errs, jobflags.Errorf("readers", "%d is not a positive number", c.Readers))
	}
	if c.WindowType == "sliding" {
		if c.WindowPeriod <= 0 || c.WindowPeriod > c.Window {
			errs = append(errs, jobflags.Errorf("window_period", "%v is not between 0 and --window (%v), as a sliding window needs", c.WindowPeriod, c.Window))
		}
	} else if c.WindowPeriod != 0 {
		errs = append(errs, jobflags.Errorf("window_period", "applies only to --window_type=sliding"))
	}
	for name, d := range map[string]time.Duration{"window": c.Window, "window_period": c.WindowPeriod, "allowed_lateness": c.AllowedLateness} {
		if d%time.Millisecond != 0 {
			errs = append(errs, jobflags.Errorf(name, "%v is not a whole number of milliseconds (Beam's time resolution)", d))
		}
	}
	errs = append(errs, c.validateOutputs()...)
	if c.MQTT.IsEmbedded() {
		if c.SimulateDevices < 1 {
			errs = append(errs, jobflags.Errorf("simulate_devices", "%d is not a positive number", c.SimulateDevices))
		}
		if c.SimulateRate <= 0 {
			errs = append(errs, jobflags.Errorf("simulate_rate", "%v is not a positive rate", c.SimulateRate))
		}
		for name, v := range map[string]float64{"simulate_malformed": c.SimulateMalformed, "simulate_late": c.SimulateLate} {
			if v < 0 || v > 1 {
				errs = append(errs, jobflags.Errorf(name, "%v is not a share between 0 and 1", v))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *config) validateOutputs() []error {
	var errs []error
	for name, v := range map[string]string{"output_table": c.OutputTable, "raw_table": c.RawTable,
		"dead_letter_table": c.DeadLetterTable, "command_table": c.CommandTable} {
		errs = append(errs, jobflags.Table(name, v))
	}
	if c.OutputTable == "" && (c.RawTable != "" || c.DeadLetterTable != "" || c.CommandTable != "") {
		errs = append(errs, jobflags.Errorf("output_table", "is required with --raw_table, --dead_letter_table or --command_table"))
	}
	dir, err := jobflags.ValidateOutputs(c.Runner, "output_table", c.OutputTable, c.OutputDir, c.BigQueryEndpoint)
	c.OutputDir = dir
	errs = append(errs, err)
	if c.OutputTable != "" {
		if c.DeadLetterTable == "" {
			c.DeadLetterTable = c.OutputTable + "_dead_letters"
		}
		if c.CommandTable == "" {
			c.CommandTable = c.OutputTable + "_commands"
		}
	}
	if strings.HasPrefix(c.Registry, "bq://") {
		errs = append(errs, jobflags.Table("registry", strings.TrimPrefix(c.Registry, "bq://")))
	}
	return errs
}

// String describes the job for its start-up line (no secrets).
func (c *config) String() string {
	out := jobflags.OutputsString(c.OutputDir, c.OutputTable)
	return fmt.Sprintf("telemetry job on %s: %s, topics %v, payloads %s, %s windows of %v (lateness %v), output %s",
		c.Runner, c.MQTT.String(), c.Topics, c.formats.String(), c.WindowType, c.Window, c.AllowedLateness, out)
}
