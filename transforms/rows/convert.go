package rows

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
	"github.com/mqttbeam/mqttbeam/transforms/bigqueryio"
	"github.com/mqttbeam/mqttbeam/transforms/enrich"
	"github.com/mqttbeam/mqttbeam/transforms/rules"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry"
)

func init() {
	register.Function1x1(FromEnriched)
	register.Function1x1(FromBigQueryFailure)
	register.Function1x1(FromReading)
	register.Function1x2(FromTooLate)
	register.Function1x1(FromParseFailure)
	register.Function2x1(FromPublication)
	register.Function2x1(FromRejected)
	register.Function2x1(FromPublishError)
}

// StageParse is the DeadLetter stage of messages the telemetry parser
// refused.
const StageParse = "parse"

// FromAggregate makes the row of an aggregate of a device with the given
// registry attributes; known says whether the registry has the device.
func FromAggregate(a aggregate.Aggregate, device map[string]string, known bool) Aggregate {
	return Aggregate{
		DeviceID: a.DeviceID, Metric: a.Metric,
		WindowStart: a.WindowStart, WindowEnd: a.WindowEnd,
		Count: a.Count, Min: a.Min, Max: a.Max, Sum: a.Sum, Mean: a.Mean,
		First: a.First, Last: a.Last, FirstTime: a.FirstTime, LastTime: a.LastTime,
		Pane: a.Pane, PaneIndex: a.PaneIndex,
		KnownDevice: known,
		Site:        device["site"], Model: device["model"], Owner: device["owner"],
		Device: attributes(device),
	}
}

// FromEnriched makes the row of an enriched aggregate (enrich.Join's output).
func FromEnriched(e enrich.Enriched) Aggregate {
	return FromAggregate(e.Aggregate, e.Device, e.Known)
}

// FromReading makes the row of a parsed message.
func FromReading(r telemetry.Reading) Reading {
	ms := make([]Metric, 0, len(r.Metrics))
	for _, name := range slices.Sorted(maps.Keys(r.Metrics)) {
		ms = append(ms, Metric{Name: name, Value: r.Metrics[name]})
	}
	return Reading{
		DeviceID: r.DeviceID, Kind: r.Kind, Topic: r.Topic,
		EventTime: r.EventTime, ReceivedAt: r.ReceivedAt, TimeSource: r.TimeSource,
		Metrics: ms, Attributes: attributes(r.Attributes),
	}
}

// FromParseFailure makes the row of a message the telemetry parser refused.
func FromParseFailure(d telemetry.DeadLetter) DeadLetter {
	return DeadLetter{
		Stage: StageParse, Topic: d.Topic, Payload: d.Payload, ReceivedAt: d.ReceivedAt,
		Reason: d.Reason, Detail: d.Detail,
	}
}

// FromPublication makes the audit row of a command issued by the rules
// (rules.Evaluate's output) or the telemetry parser (Sparkplug B rebirth
// requests); its time is the element's event time. The rule and device
// come from the command's payload (a rules.Payload), else from its Fields
// "rule" and "device_id". A payload that is not UTF-8 text (protobuf) is
// written base64-encoded, after "base64:".
func FromPublication(at beam.EventTime, p mqttio.Publication) Command {
	var pl rules.Payload
	c := Command{IssuedAt: at.ToTime().UTC(), Topic: p.Topic, Payload: string(p.Payload), Status: CommandIssued}
	if !utf8.Valid(p.Payload) {
		c.Payload = "base64:" + base64.StdEncoding.EncodeToString(p.Payload)
	}
	if err := json.Unmarshal(p.Payload, &pl); err == nil {
		c.DeviceID, c.Rule = pl.DeviceID, pl.Rule
	}
	if c.DeviceID == "" {
		c.DeviceID = p.Fields["device_id"]
	}
	if c.Rule == "" {
		c.Rule = p.Fields["rule"]
	}
	return c
}

// FromRejected makes the audit row of a command the rules refused to build
// (an unsafe device id); its time is the element's event time.
func FromRejected(at beam.EventTime, r rules.Rejected) Command {
	return Command{
		IssuedAt: at.ToTime().UTC(), DeviceID: r.DeviceID, Rule: r.Rule,
		Status: CommandRejected, Reason: r.Reason,
	}
}

// FromPublishError makes the audit row of a command the MQTT writer refused.
func FromPublishError(at beam.EventTime, e mqttio.PublishError) Command {
	c := FromPublication(at, e.Publication)
	c.Status, c.Reason = CommandFailed, e.Reason
	return c
}

// attributes lists a map's entries sorted by name; nil when it is empty.
func attributes(m map[string]string) []Attribute {
	if len(m) == 0 {
		return nil
	}
	as := make([]Attribute, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		as = append(as, Attribute{Name: name, Value: m[name]})
	}
	return as
}

// StageBigQuery is the DeadLetter stage of rows BigQuery refused.
const StageBigQuery = "bigquery"

// FromBigQueryFailure makes the row of a row BigQuery refused: Topic holds
// the table it was meant for and Payload the row as JSON.
func FromBigQueryFailure(d bigqueryio.DeadLetter) DeadLetter {
	return DeadLetter{
		Stage: StageBigQuery, Topic: d.Table, Payload: []byte(d.Row), ReceivedAt: d.Time,
		Reason: "rejected", Detail: d.Error,
	}
}

// StageAggregate is the DeadLetter stage of readings that arrived after
// their window closed (beyond the allowed lateness).
const StageAggregate = "aggregate"

// ReasonTooLate is the DeadLetter reason of such readings.
const ReasonTooLate = "too_late"

// FromTooLate makes the row of a reading that arrived after its window had
// closed (aggregate.PerWindowWithLate's second output): Payload holds the
// reading as a Reading row in JSON.
func FromTooLate(r telemetry.Reading) (DeadLetter, error) {
	b, err := json.Marshal(FromReading(r))
	if err != nil {
		return DeadLetter{}, fmt.Errorf("rows: encoding a late reading: %w", err)
	}
	return DeadLetter{
		Stage: StageAggregate, Topic: r.Topic, Payload: b, ReceivedAt: r.ReceivedAt, Reason: ReasonTooLate,
		Detail: fmt.Sprintf("event time %s is beyond the allowed lateness of its window", r.EventTime.UTC().Format(time.RFC3339Nano)),
	}, nil
}
