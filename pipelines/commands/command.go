package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/pubsubio"
	"github.com/mqttbeam/mqttbeam/transforms/rows"
)

func init() {
	register.DoFn4x0[beam.EventTime, pubsubio.Message, func(mqttio.Publication), func(rows.Command)](&validateFn{})
	register.Emitter1[mqttio.Publication]()
	register.Emitter1[rows.Command]()
	register.DoFn2x1[beam.EventTime, mqttio.PublishError, rows.Command](&failedFn{})
}

// Reasons a command is rejected: the first word of the audit row's reason.
const (
	ReasonNotJSON        = "not_json"
	ReasonNoDeviceID     = "no_device_id"
	ReasonUnsafeDeviceID = "unsafe_device_id"
	ReasonNoCommand      = "no_command"
	ReasonBadID          = "bad_id"
	// ReasonBadResponse: response_topic is not a topic to publish to, or
	// correlation_data is not a string.
	ReasonBadResponse = "bad_response"
)

// request is a command as backends publish it to the subscription, the
// message's data:
//
//	{"device_id": "pump-7", "command": {"action": "reboot"}, "id": "c-123"}
//
//	device_id  string, required: the device, one topic level (not empty, no
//	           '/', '+', '#' or NUL)
//	command    JSON object, required: what the device is to do, passed on as is
//	id         string, optional: the command's id (default: the Pub/Sub
//	           message id), for the device to ignore repeats
//	response_topic    string, optional: where the device is to answer
//	           (MQTT 5 request/response: the publication's response topic;
//	           a topic without wildcards)
//	correlation_data  string, optional: ties the answer to the command
//	           (the publication's correlation data; default with a
//	           response_topic: the command's id)
//
// Other fields are ignored, and so are response_topic and correlation_data
// with MQTT 3.1.1, which has no properties.
type request struct {
	DeviceID        json.RawMessage `json:"device_id"`
	Command         json.RawMessage `json:"command"`
	ID              json.RawMessage `json:"id"`
	ResponseTopic   json.RawMessage `json:"response_topic"`
	CorrelationData json.RawMessage `json:"correlation_data"`
}

// published is the payload published to the device: the command with its
// id and device id.
type published struct {
	ID       string          `json:"id"`
	DeviceID string          `json:"device_id"`
	Command  json.RawMessage `json:"command"`
}

// validateFn checks each command, emits the valid ones as publications to
// their device's topic, and emits an audit row for every command: sent, or
// rejected with the reason.
type validateFn struct {
	// Topic is the command topic template; {device_id} is the only field.
	Topic string
	// Source names the commands' origin in the audit rows (Rule).
	Source string
}

// ProcessElement validates one Pub/Sub message.
func (fn *validateFn) ProcessElement(at beam.EventTime, m pubsubio.Message, publish func(mqttio.Publication), audit func(rows.Command)) {
	row := rows.Command{IssuedAt: at.ToTime().UTC(), Rule: fn.Source}
	p, device, err := fn.publication(m)
	row.DeviceID = device
	if err != nil {
		row.Payload, row.Status, row.Reason = strings.ToValidUTF8(string(m.Data), "\uFFFD"), rows.CommandRejected, err.Error()
		audit(row)
		return
	}
	row.Topic, row.Payload, row.Status = p.Topic, string(p.Payload), rows.CommandSent
	publish(p)
	audit(row)
}

// publication turns a valid command into its publication; otherwise the
// error's text starts with the reason code. device is the device id when
// it could be read.
func (fn *validateFn) publication(m pubsubio.Message) (p mqttio.Publication, device string, err error) {
	var req request
	if err := json.Unmarshal(m.Data, &req); err != nil {
		return p, "", fmt.Errorf("%s: %v", ReasonNotJSON, err)
	}
	if isNull(req.DeviceID) {
		return p, "", fmt.Errorf("%s: device_id is missing", ReasonNoDeviceID)
	}
	if err := json.Unmarshal(req.DeviceID, &device); err != nil {
		return p, "", fmt.Errorf("%s: device_id is not a string", ReasonNoDeviceID)
	}
	if device == "" {
		return p, "", fmt.Errorf("%s: device_id is empty", ReasonNoDeviceID)
	}
	if strings.ContainsAny(device, "/+#\x00") {
		return p, device, fmt.Errorf("%s: %q contains '/', '+', '#' or NUL", ReasonUnsafeDeviceID, device)
	}
	topic := strings.ReplaceAll(fn.Topic, "{device_id}", device)
	if err := mqttio.ValidateTopic(topic); err != nil {
		return p, device, fmt.Errorf("%s: %v", ReasonUnsafeDeviceID, err)
	}
	if isNull(req.Command) || bytes.TrimSpace(req.Command)[0] != '{' {
		return p, device, fmt.Errorf("%s: command is missing or not a JSON object", ReasonNoCommand)
	}
	id := m.ID
	if !isNull(req.ID) {
		if err := json.Unmarshal(req.ID, &id); err != nil || id == "" {
			return p, device, fmt.Errorf("%s: id is not a non-empty string", ReasonBadID)
		}
	}
	payload, err := json.Marshal(published{ID: id, DeviceID: device, Command: req.Command})
	if err != nil {
		return p, device, fmt.Errorf("%s: %v", ReasonNoCommand, err)
	}
	p = mqttio.Publication{Topic: topic, Payload: payload}
	if err := response(&req, id, &p); err != nil {
		return p, device, fmt.Errorf("%s: %v", ReasonBadResponse, err)
	}
	return p, device, nil
}

// response sets the response topic and correlation data of a command that
// asks for an answer.
func response(req *request, id string, p *mqttio.Publication) error {
	if !isNull(req.ResponseTopic) {
		if err := json.Unmarshal(req.ResponseTopic, &p.ResponseTopic); err != nil {
			return fmt.Errorf("response_topic is not a string")
		}
		if err := mqttio.ValidateTopic(p.ResponseTopic); err != nil {
			return fmt.Errorf("response_topic: %v", err)
		}
		p.CorrelationData = []byte(id)
	}
	if !isNull(req.CorrelationData) {
		var c string
		if err := json.Unmarshal(req.CorrelationData, &c); err != nil {
			return fmt.Errorf("correlation_data is not a string")
		}
		p.CorrelationData = []byte(c)
	}
	return nil
}

// isNull reports whether a field is absent or null.
func isNull(v json.RawMessage) bool {
	return len(v) == 0 || string(v) == "null"
}

// failedFn makes the audit row of a command the MQTT writer refused.
type failedFn struct {
	Source string
}

// ProcessElement makes one failed row.
func (fn *failedFn) ProcessElement(at beam.EventTime, e mqttio.PublishError) rows.Command {
	var p published
	_ = json.Unmarshal(e.Publication.Payload, &p) // the payload validateFn made
	return rows.Command{
		IssuedAt: at.ToTime().UTC(), DeviceID: p.DeviceID, Rule: fn.Source, Topic: e.Publication.Topic,
		Payload: string(e.Publication.Payload), Status: rows.CommandFailed, Reason: e.Reason,
	}
}
