package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/devicesim"
	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/jobflags"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// defaultTopic is --topic's filter when no flag changes the formats.
const defaultTopic = "devices/+/telemetry"

// mixedRebirth is --sparkplug_rebirth with --simulate_profile=mixed: the job
// starts after the simulated edge node published its BIRTHs, and asks for
// them again.
const mixedRebirth = 10 * time.Second

// formats are the flags that say how payloads are parsed.
type formats struct {
	// DeviceTopic is the template that finds the device id in a topic, of
	// PayloadFormat's payloads.
	DeviceTopic   string
	PayloadFormat string
	// Routes are TEMPLATE=FORMAT pairs, tried before DeviceTopic.
	Routes            jobflags.List
	BatchField        string
	DeviceIDField     string
	JSONArrays        string
	SparkplugDeviceID string
	SparkplugRebirth  time.Duration
	InfluxPrecision   string
	SimulateProfile   string

	routes []devicesim.Route // Routes, parsed
	// notice is printed when the job starts, when not empty.
	notice string
}

func (f *formats) register(fs *flag.FlagSet) {
	fs.StringVar(&f.DeviceTopic, "device_topic", telemetry.DefaultTopicTemplate,
		"Topic template that names the device id level ({device_id}; also {kind}, and {metric} for --payload_format=value), of --payload_format's payloads (with --payload_format=sparkplug_b default spBv1.0/#)")
	fs.StringVar(&f.PayloadFormat, "payload_format", telemetry.FormatJSON,
		"Payload format of --device_topic's topics: json (objects, nested ones flattened to dotted names), batch (an array of objects, or an object with --batch_field), value (a plain number), sparkplug_b, influx (InfluxDB line protocol)")
	jobflags.ListVar(fs, &f.Routes, "format_route", nil,
		"Topic templates of other payload formats, TEMPLATE=FORMAT, comma-separated or repeated, tried in order before --device_topic (first match wins), e.g. gateways/{device_id}/telemetry=batch,spBv1.0/#=sparkplug_b")
	fs.StringVar(&f.BatchField, "batch_field", telemetry.DefaultBatchField, "Member of a batch object that holds its array of readings")
	fs.StringVar(&f.DeviceIDField, "device_id_field", telemetry.DefaultDeviceIDField, "Member of a batch element (or tag of an influx line) that names the device it is about (a gateway publishing for the devices behind it; host for Telegraf)")
	fs.StringVar(&f.JSONArrays, "json_arrays", telemetry.ArraysIndexed, "JSON arrays: indexed (their elements are metrics named by index, accel.0) or ignored")
	fs.StringVar(&f.SparkplugDeviceID, "sparkplug_device_id", telemetry.DefaultSparkplugDeviceID,
		"Device id of Sparkplug B messages, from {group_id}, {edge_node_id} and {device_id}")
	fs.DurationVar(&f.SparkplugRebirth, "sparkplug_rebirth", 0,
		"Ask a Sparkplug B edge node whose state is unknown (DATA before BIRTH, seq gap, unknown alias) to publish its BIRTHs again (NCMD Node Control/Rebirth), at most once per this long; 0: never (default; with --simulate_profile=mixed: 10s)")
	fs.StringVar(&f.InfluxPrecision, "influx_precision", "ns", "Unit of influx line protocol timestamps: ns, us, ms or s")
	fs.StringVar(&f.SimulateProfile, "simulate_profile", devicesim.ProfileJSON,
		"With --broker=embedded: json (devices publishing JSON) or mixed (also a gateway publishing batches, plain-value meters and a Sparkplug B edge node with two devices)")
}

// validate checks the format flags and fills in the defaults that depend
// on others, among them topics when --topic was not given.
func (f *formats) validate(embedded bool, topics *jobflags.List, readers int) []error {
	errs := []error{
		jobflags.OneOf("payload_format", f.PayloadFormat, telemetry.Formats...),
		jobflags.OneOf("json_arrays", f.JSONArrays, telemetry.ArraysIndexed, telemetry.ArraysIgnored),
		jobflags.OneOf("simulate_profile", f.SimulateProfile, devicesim.ProfileJSON, devicesim.ProfileMixed),
		jobflags.OneOf("influx_precision", f.InfluxPrecision, "ns", "us", "ms", "s"),
		jobflags.NonNegative("sparkplug_rebirth", f.SparkplugRebirth),
	}
	if f.SimulateProfile == devicesim.ProfileMixed {
		if !embedded {
			errs = append(errs, jobflags.Errorf("simulate_profile", "applies only to --broker=embedded"))
		}
		if len(f.Routes) == 0 {
			f.routes = slices.Clone(devicesim.MixedRoutes)
		}
		if f.SparkplugRebirth == 0 {
			f.SparkplugRebirth = mixedRebirth
		}
	}
	for _, r := range f.Routes {
		i := strings.LastIndexByte(r, '=')
		if i < 0 {
			errs = append(errs, jobflags.Errorf("format_route", "%q is not TEMPLATE=FORMAT", r))
			continue
		}
		f.routes = append(f.routes, devicesim.Route{Template: r[:i], Format: r[i+1:]})
	}
	if f.PayloadFormat == telemetry.FormatSparkplugB && f.DeviceTopic == telemetry.DefaultTopicTemplate {
		f.DeviceTopic = telemetry.DefaultSparkplugTemplate
	}
	var filters []string
	for _, r := range f.templates() {
		name := "format_route"
		if r.Template == f.DeviceTopic && r.Format == f.PayloadFormat {
			name = "device_topic"
		}
		fs, err := telemetry.Filter(r.Template, r.Format)
		if err != nil {
			errs = append(errs, jobflags.Errorf(name, "%v", strings.TrimPrefix(err.Error(), "option Route: ")))
			continue
		}
		filters = append(filters, fs...)
	}
	if f.SparkplugRebirth > 0 && !f.hasSparkplug() {
		errs = append(errs, jobflags.Errorf("sparkplug_rebirth", "needs a sparkplug_b format (--payload_format or --format_route)"))
	}
	if _, err := telemetry.NewParser(telemetry.SparkplugDeviceID(f.SparkplugDeviceID)); err != nil {
		errs = append(errs, jobflags.Errorf("sparkplug_device_id", "%v", strings.TrimPrefix(err.Error(), "telemetry: option SparkplugDeviceID: ")))
	}
	for name, v := range map[string]string{"batch_field": f.BatchField, "device_id_field": f.DeviceIDField} {
		if v == "" {
			errs = append(errs, jobflags.Errorf(name, "is empty"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errs
	}
	if _, err := telemetry.NewParser(f.parseOptions()...); err != nil {
		return []error{jobflags.Errorf("format_route", "%v", err)} // the checks above should have caught it
	}
	if len(*topics) == 0 {
		*topics = f.defaultTopics(filters)
	}
	if readers > 1 && f.hasSparkplug() {
		f.notice = fmt.Sprintf("--readers=%d with Sparkplug B: a shared subscription spreads an edge node's messages over the readers, which can reorder them (reported as seq gaps); read Sparkplug B topics with one reader", readers)
	}
	return nil
}

// templates are the routes and then --device_topic, in the order they are
// tried.
func (f *formats) templates() []devicesim.Route {
	return append(slices.Clip(f.routes), devicesim.Route{Template: f.DeviceTopic, Format: f.PayloadFormat})
}

func (f *formats) hasSparkplug() bool {
	return slices.ContainsFunc(f.templates(), func(r devicesim.Route) bool { return r.Format == telemetry.FormatSparkplugB })
}

// defaultTopics is --topic when it was not given: devicesim's default
// devices/+/telemetry when no flag changed the formats, else the filters of
// the templates.
func (f *formats) defaultTopics(filters []string) []string {
	if len(f.routes) == 0 && f.PayloadFormat == telemetry.FormatJSON && f.DeviceTopic == telemetry.DefaultTopicTemplate {
		return []string{defaultTopic}
	}
	// A filter another one covers would have the broker deliver its
	// messages twice (MQTT 3.1.1 allows it for overlapping subscriptions).
	var out []string
	for i, f := range filters {
		covered := slices.ContainsFunc(filters, func(g string) bool { return g != f && covers(g, f) }) ||
			slices.Contains(filters[:i], f)
		if !covered {
			out = append(out, f)
		}
	}
	return out
}

// covers says whether every topic that filter b matches, filter a matches
// too.
func covers(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i, l := range as {
		switch {
		case l == "#":
			return true
		case i >= len(bs) || bs[i] == "#":
			return false
		case l != "+" && l != bs[i]:
			return false
		}
	}
	return len(as) == len(bs)
}

// parseOptions are the telemetry.Parse options of the flags.
func (f *formats) parseOptions() []telemetry.Option {
	opts := []telemetry.Option{
		telemetry.TopicTemplate(f.DeviceTopic), telemetry.PayloadFormat(f.PayloadFormat),
		telemetry.BatchField(f.BatchField), telemetry.DeviceIDField(f.DeviceIDField),
		telemetry.Arrays(f.JSONArrays), telemetry.SparkplugDeviceID(f.SparkplugDeviceID),
		telemetry.InfluxPrecision(influxUnits[f.InfluxPrecision]),
	}
	for _, r := range f.routes {
		opts = append(opts, telemetry.Route(r.Template, r.Format))
	}
	if f.SparkplugRebirth > 0 {
		opts = append(opts, telemetry.RebirthRequests(f.SparkplugRebirth))
	}
	return opts
}

// influxUnits are the units of --influx_precision.
var influxUnits = map[string]time.Duration{"ns": time.Nanosecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}

// rebirthTopic is the mqttio.Write topic template of rebirth requests.
func rebirthTopic() mqttio.WriteOption { return mqttio.TopicTemplate(sparkplug.NCMDTemplate) }

// String names the templates and their formats, for the start-up line.
func (f *formats) String() string {
	var parts []string
	for _, r := range f.templates() {
		parts = append(parts, r.Template+"="+r.Format)
	}
	return strings.Join(parts, ",")
}
