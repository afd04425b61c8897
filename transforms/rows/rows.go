// Package rows defines the rows the project's pipelines write: windowed
// aggregates, raw readings, dead letters and the audit of commands. The same
// structs are the BigQuery tables' schemas (their `bigquery` tags, see
// Tables) and the local newline-delimited JSON files' records (their `json`
// tags carry the same names), so a local run and a Dataflow run produce the
// same columns.
//
// # Tables
//
//	aggregates   one row per device, metric, window and pane
//	             partitioned by DAY on window_start, clustered by device_id, metric
//	readings     one row per parsed message (optional output)
//	             partitioned by DAY on event_time, clustered by device_id
//	dead_letters one row per message or row that could not be processed
//	             partitioned by DAY on received_at, clustered by stage, reason
//	commands     one row per command issued, rejected or failed
//	             partitioned by DAY on issued_at, clustered by device_id, rule
//
// A window fires once on time and again for each late update, so the
// aggregates table can hold several rows per window: keep the one with the
// highest pane_index, e.g.
//
//	SELECT * FROM aggregates
//	WHERE TRUE QUALIFY ROW_NUMBER() OVER (
//	  PARTITION BY device_id, metric, window_start ORDER BY pane_index DESC) = 1
package rows

import (
	"fmt"
	"reflect"
	"time"

	"cloud.google.com/go/bigquery"
)

// Aggregate is a row of the aggregates table: the statistics of one metric of
// one device over one window, with the device's registry attributes.
type Aggregate struct {
	DeviceID    string    `bigquery:"device_id" json:"device_id"`
	Metric      string    `bigquery:"metric" json:"metric"`
	WindowStart time.Time `bigquery:"window_start" json:"window_start"`
	WindowEnd   time.Time `bigquery:"window_end" json:"window_end"`
	Count       int64     `bigquery:"count" json:"count"`
	Min         float64   `bigquery:"min" json:"min"`
	Max         float64   `bigquery:"max" json:"max"`
	Sum         float64   `bigquery:"sum" json:"sum"`
	Mean        float64   `bigquery:"mean" json:"mean"`
	First       float64   `bigquery:"first" json:"first"`
	Last        float64   `bigquery:"last" json:"last"`
	FirstTime   time.Time `bigquery:"first_time" json:"first_time"`
	LastTime    time.Time `bigquery:"last_time" json:"last_time"`
	// Pane is "on_time", "late" or "early"; PaneIndex counts the firings of
	// the window from 0.
	Pane      string `bigquery:"pane" json:"pane"`
	PaneIndex int64  `bigquery:"pane_index" json:"pane_index"`
	// KnownDevice is false when the device is not in the registry; its
	// attributes are then empty.
	KnownDevice bool `bigquery:"known_device" json:"known_device"`
	// Site, Model and Owner are the registry's usual columns, empty when the
	// registry has none; Device holds every registry column.
	Site   string      `bigquery:"site" json:"site,omitempty"`
	Model  string      `bigquery:"model" json:"model,omitempty"`
	Owner  string      `bigquery:"owner" json:"owner,omitempty"`
	Device []Attribute `bigquery:"device" json:"device,omitempty"`
}

// Reading is a row of the readings table: one parsed telemetry message.
type Reading struct {
	DeviceID   string    `bigquery:"device_id" json:"device_id"`
	Kind       string    `bigquery:"kind" json:"kind,omitempty"`
	Topic      string    `bigquery:"topic" json:"topic"`
	EventTime  time.Time `bigquery:"event_time" json:"event_time"`
	ReceivedAt time.Time `bigquery:"received_at" json:"received_at"`
	// TimeSource is "payload" or "received" (the message had no timestamp).
	TimeSource string      `bigquery:"time_source" json:"time_source"`
	Metrics    []Metric    `bigquery:"metrics" json:"metrics"`
	Attributes []Attribute `bigquery:"attributes" json:"attributes,omitempty"`
}

// DeadLetter is a row of the dead_letters table: something a stage could not
// process, with the original bytes and why.
type DeadLetter struct {
	// Stage is the step that refused it: "parse", "bigquery", ...
	Stage      string    `bigquery:"stage" json:"stage"`
	Topic      string    `bigquery:"topic" json:"topic"`
	Payload    []byte    `bigquery:"payload" json:"payload"`
	ReceivedAt time.Time `bigquery:"received_at" json:"received_at"`
	// Reason is a stable code for counting and alerting; Detail says what
	// was wrong in words.
	Reason string `bigquery:"reason" json:"reason"`
	Detail string `bigquery:"detail" json:"detail"`
}

// Command statuses.
const (
	// CommandIssued is a command handed to the MQTT writer.
	CommandIssued = "issued"
	// CommandSent is a command the broker acknowledged.
	CommandSent = "sent"
	// CommandRejected is a command refused before publishing (invalid
	// device id or payload); Reason says why.
	CommandRejected = "rejected"
	// CommandFailed is a command the MQTT writer could not publish.
	CommandFailed = "failed"
)

// Command is a row of the commands table: the audit of one command.
type Command struct {
	IssuedAt time.Time `bigquery:"issued_at" json:"issued_at"`
	DeviceID string    `bigquery:"device_id" json:"device_id"`
	// Rule names the rule that fired, or the command's source.
	Rule    string `bigquery:"rule" json:"rule"`
	Topic   string `bigquery:"topic" json:"topic,omitempty"`
	Payload string `bigquery:"payload" json:"payload,omitempty"`
	Status  string `bigquery:"status" json:"status"`
	Reason  string `bigquery:"reason" json:"reason,omitempty"`
}

// Metric is a named number.
type Metric struct {
	Name  string  `bigquery:"name" json:"name"`
	Value float64 `bigquery:"value" json:"value"`
}

// Attribute is a named string.
type Attribute struct {
	Name  string `bigquery:"name" json:"name"`
	Value string `bigquery:"value" json:"value"`
}

// Table describes one of the project's output tables.
type Table struct {
	// Name is the table's default name (and the local output's file set).
	Name string
	// Row is the row type, e.g. reflect.TypeOf(Aggregate{}).
	Row reflect.Type
	// PartitionBy is the TIMESTAMP column the table is partitioned on by day.
	PartitionBy string
	// ClusterBy are the clustering columns.
	ClusterBy []string
}

// Schema is the BigQuery schema of the table's rows.
func (t Table) Schema() (bigquery.Schema, error) {
	s, err := bigquery.InferSchema(reflect.New(t.Row).Elem().Interface())
	if err != nil {
		return nil, fmt.Errorf("rows: schema of %s: %w", t.Name, err)
	}
	return s, nil
}

// Table names.
const (
	AggregatesTable  = "aggregates"
	ReadingsTable    = "readings"
	DeadLettersTable = "dead_letters"
	CommandsTable    = "commands"
)

// Tables lists the project's output tables.
func Tables() []Table {
	return []Table{
		{AggregatesTable, reflect.TypeOf(Aggregate{}), "window_start", []string{"device_id", "metric"}},
		{ReadingsTable, reflect.TypeOf(Reading{}), "event_time", []string{"device_id"}},
		{DeadLettersTable, reflect.TypeOf(DeadLetter{}), "received_at", []string{"stage", "reason"}},
		{CommandsTable, reflect.TypeOf(Command{}), "issued_at", []string{"device_id", "rule"}},
	}
}
