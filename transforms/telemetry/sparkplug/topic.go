// Package sparkplug reads and writes the MQTT topics and payloads of
// Sparkplug B (Eclipse Sparkplug 2.2 and 3.0), the industrial convention for
// telemetry over MQTT: its topic namespace, and its protobuf payload decoded
// and encoded directly on the wire format (google.golang.org/protobuf's
// protowire), from a message definition of our own.
//
// The package holds no state and knows nothing of Beam; telemetry.Parse
// keeps each edge node's BIRTH definitions (metric names and aliases) and
// sequence numbers in Beam state and turns the payloads into readings.
//
// Topics are spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]:
//
//	NBIRTH, NDATA, NDEATH, NCMD   spBv1.0/plant-1/NDATA/edge-7
//	DBIRTH, DDATA, DDEATH, DCMD   spBv1.0/plant-1/DDATA/edge-7/pump-3
//	STATE (of host applications)  spBv1.0/STATE/{host_id} (3.0), STATE/{host_id} (2.2)
//
// A payload is a timestamp (epoch milliseconds), a sequence number (0-255,
// per edge node) and a list of metrics, each with a name (in BIRTHs) or an
// alias (a number a BIRTH assigned to the name), a datatype, an optional
// timestamp and one value.
package sparkplug

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Namespace is the first topic level of Sparkplug B.
const Namespace = "spBv1.0"

// Message types: the third topic level.
const (
	NBIRTH = "NBIRTH" // an edge node came online: its metrics, names and aliases
	NDEATH = "NDEATH" // an edge node went offline (its MQTT will)
	NDATA  = "NDATA"  // values of an edge node's metrics
	NCMD   = "NCMD"   // a command to an edge node
	DBIRTH = "DBIRTH" // a device came online behind its edge node
	DDEATH = "DDEATH" // a device went offline
	DDATA  = "DDATA"  // values of a device's metrics
	DCMD   = "DCMD"   // a command to a device
	STATE  = "STATE"  // a host application's online state
)

// NCMDTemplate is the topic template (mqttio.TopicTemplate) of commands to
// an edge node, such as RebirthRequest: its fields are group_id and
// edge_node_id.
const NCMDTemplate = Namespace + "/{group_id}/NCMD/{edge_node_id}"

// Topic is a parsed Sparkplug B topic.
type Topic struct {
	// Group is the group id ({group_id}); empty for STATE.
	Group string
	// Type is the message type: NBIRTH, NDATA, ..., or STATE.
	Type string
	// EdgeNode is the edge node id; for STATE, the host application id.
	EdgeNode string
	// Device is the device id of DBIRTH, DDATA, DDEATH and DCMD; empty for
	// the others.
	Device string
}

// IsDevice says whether the message is about a device behind the edge node
// (DBIRTH, DDATA, DDEATH, DCMD).
func (t Topic) IsDevice() bool { return t.Device != "" }

// IsTelemetry says whether the message type carries an edge node's or a
// device's state or values (BIRTH, DATA, DEATH), rather than a command or a
// host application's state.
func (t Topic) IsTelemetry() bool {
	switch t.Type {
	case NBIRTH, NDATA, NDEATH, DBIRTH, DDATA, DDEATH:
		return true
	}
	return false
}

// String is the topic.
func (t Topic) String() string {
	if t.Type == STATE {
		return Namespace + "/" + STATE + "/" + t.EdgeNode
	}
	s := Namespace + "/" + t.Group + "/" + t.Type + "/" + t.EdgeNode
	if t.Device != "" {
		s += "/" + t.Device
	}
	return s
}

// ParseTopic parses a Sparkplug B topic. It fails for a topic outside the
// namespace, an unknown message type, a device message without its device
// level (or a node message with one), and ids that are empty, not UTF-8 or
// hold '+', '#' or NUL.
func ParseTopic(topic string) (Topic, error) {
	var t Topic
	if !utf8.ValidString(topic) {
		return t, errors.New("topic is not valid UTF-8")
	}
	var levels [6]string // at most 5 levels, and one to tell more
	n := 0
	for rest, more := topic, true; more && n < len(levels); n++ {
		levels[n], rest, more = strings.Cut(rest, "/")
	}
	if levels[0] != Namespace {
		return t, fmt.Errorf("topic %q is not in the Sparkplug B namespace %s/", topic, Namespace)
	}
	if n == 3 && levels[1] == STATE {
		t.Type, t.EdgeNode = STATE, levels[2]
		return t, checkIDs(topic, t.EdgeNode)
	}
	if n < 4 || n > 5 {
		return t, fmt.Errorf("topic %q has %d levels; want %s/{group_id}/{message_type}/{edge_node_id}[/{device_id}]", topic, strings.Count(topic, "/")+1, Namespace)
	}
	t.Group, t.Type, t.EdgeNode = levels[1], levels[2], levels[3]
	if n == 5 {
		t.Device = levels[4]
	}
	switch t.Type {
	case NBIRTH, NDEATH, NDATA, NCMD:
		if n == 5 {
			return t, fmt.Errorf("topic %q: an %s has no device level", topic, t.Type)
		}
		return t, checkIDs(topic, t.Group, t.EdgeNode)
	case DBIRTH, DDEATH, DDATA, DCMD:
		if n == 4 {
			return t, fmt.Errorf("topic %q: a %s needs a device level", topic, t.Type)
		}
		return t, checkIDs(topic, t.Group, t.EdgeNode, t.Device)
	}
	return t, fmt.Errorf("topic %q: %q is not a Sparkplug B message type (NBIRTH, NDATA, NDEATH, DBIRTH, DDATA, DDEATH, NCMD, DCMD, STATE)", topic, t.Type)
}

func checkIDs(topic string, ids ...string) error {
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("topic %q has an empty id level", topic)
		}
		if strings.ContainsAny(id, "+#\x00") {
			return fmt.Errorf("topic %q: id %q contains '+', '#' or NUL", topic, id)
		}
	}
	return nil
}
