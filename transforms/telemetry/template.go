package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// Kinds of template levels.
const (
	levelLiteral = iota
	levelDevice
	levelKind
	levelMetric
	levelPlus
	levelHash
)

type level struct {
	kind    int
	literal string
}

// template is a parsed topic template (TopicTemplate, Route).
type template struct {
	levels    []level
	hasKind   bool // a {kind} placeholder
	hasMetric bool // a {metric} placeholder
	format    string
	text      string // the template as given
}

// topicFields are what a template found in a topic.
type topicFields struct {
	device, kind, metric string
}

func parseTemplate(s, format string) (template, error) {
	t := template{format: format, text: s}
	if s == "" {
		return t, errors.New("must not be empty")
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return t, fmt.Errorf("%q is not valid UTF-8 or contains NUL", s)
	}
	parts := strings.Split(s, "/")
	devices := 0
	for i, p := range parts {
		var l level
		switch {
		case p == "{device_id}":
			l.kind = levelDevice
			devices++
		case p == "{kind}":
			if t.hasKind {
				return t, fmt.Errorf("%q has {kind} more than once", s)
			}
			l.kind, t.hasKind = levelKind, true
		case p == "{metric}":
			if format != FormatValue {
				return t, fmt.Errorf("%q: {metric} names the metric of the %s format only", s, FormatValue)
			}
			if t.hasMetric {
				return t, fmt.Errorf("%q has {metric} more than once", s)
			}
			l.kind, t.hasMetric = levelMetric, true
		case p == "+":
			l.kind = levelPlus
		case p == "#":
			if i != len(parts)-1 {
				return t, fmt.Errorf("%q has '#' before its last level", s)
			}
			l.kind = levelHash
		case strings.ContainsAny(p, "+#{}"):
			return t, fmt.Errorf("%q: level %q must be a literal, {device_id}, {kind}, {metric}, '+' or '#'", s, p)
		default:
			l.literal = p
		}
		t.levels = append(t.levels, l)
	}
	if format == FormatSparkplugB {
		if parts[0] != sparkplug.Namespace || devices > 0 || t.hasKind {
			return t, fmt.Errorf("%q: a %s template starts with %s/ and has no placeholders (the ids come from the Sparkplug topic), e.g. %q",
				s, FormatSparkplugB, sparkplug.Namespace, DefaultSparkplugTemplate)
		}
		return t, nil
	}
	if devices != 1 {
		return t, fmt.Errorf("%q must have {device_id} exactly once as a whole level, has it %d times", s, devices)
	}
	if format == FormatValue && !t.hasMetric && !t.hasKind && t.levels[len(t.levels)-1].kind != levelHash {
		return t, fmt.Errorf("%q: the %s format needs a level that names the metric: {metric} (or {kind}, or '#' whose first level is the kind), e.g. \"devices/{device_id}/values/{metric}\"", s, FormatValue)
	}
	return t, nil
}

// match returns what the template finds in topic, or ok false when the
// topic does not match the template.
func (t *template) match(topic string) (f topicFields, ok bool) {
	rest, atEnd := topic, false
	for _, l := range t.levels {
		if l.kind == levelHash {
			if !atEnd && !t.hasKind {
				f.kind, _, _ = strings.Cut(rest, "/")
			}
			return f, true
		}
		if atEnd {
			return topicFields{}, false
		}
		var seg string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		} else {
			seg, rest, atEnd = rest, "", true
		}
		switch l.kind {
		case levelLiteral:
			if seg != l.literal {
				return topicFields{}, false
			}
		case levelDevice:
			f.device = seg
		case levelKind:
			f.kind = seg
		case levelMetric:
			f.metric = seg
		}
	}
	return f, atEnd
}

// Filter is the MQTT topic filter that subscribes to the topics a topic
// template (TopicTemplate, Route) matches: its placeholders become '+'.
// For a sparkplug_b template that ends in '#' it is the filters of the
// telemetry message types (BIRTH, DATA and DEATH of edge nodes and
// devices), which leave out commands and host states. Filter fails for a
// template that the format does not accept.
func Filter(template, format string) ([]string, error) {
	if err := checkFormat("Route", format); err != nil {
		return nil, err
	}
	t, err := parseTemplate(template, format)
	if err != nil {
		return nil, err
	}
	levels := make([]string, len(t.levels))
	for i, l := range t.levels {
		switch l.kind {
		case levelLiteral:
			levels[i] = l.literal
		case levelHash:
			levels[i] = "#"
		default:
			levels[i] = "+"
		}
	}
	if format != FormatSparkplugB || levels[len(levels)-1] != "#" || len(levels) > 3 {
		return []string{strings.Join(levels, "/")}, nil
	}
	group := "+"
	if len(levels) == 3 {
		group = levels[1]
	}
	var filters []string
	for _, typ := range []string{sparkplug.NBIRTH, sparkplug.NDATA, sparkplug.NDEATH} {
		filters = append(filters, strings.Join([]string{sparkplug.Namespace, group, typ, "+"}, "/"))
	}
	for _, typ := range []string{sparkplug.DBIRTH, sparkplug.DDATA, sparkplug.DDEATH} {
		filters = append(filters, strings.Join([]string{sparkplug.Namespace, group, typ, "+", "+"}, "/"))
	}
	return filters, nil
}

// idTemplate is a parsed SparkplugDeviceID template: the pieces of the
// device id of a device message and of an edge node's own messages.
type idTemplate struct {
	device, node []idPiece
}

// idPiece is literal text or one of the topic's ids.
type idPiece struct {
	literal string
	field   string // "group_id", "edge_node_id", "device_id"; "" for a literal
}

func parseIDTemplate(s string) (idTemplate, error) {
	var t idTemplate
	if !utf8.ValidString(s) || strings.ContainsAny(s, "+#\x00") {
		return t, fmt.Errorf("%q must be UTF-8 without '+', '#' or NUL", s)
	}
	seen := map[string]int{}
	for rest := s; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.ContainsRune(rest, '}') {
				return t, fmt.Errorf("%q has '}' without '{'", s)
			}
			t.device = append(t.device, idPiece{literal: rest})
			break
		}
		if strings.ContainsRune(rest[:open], '}') {
			return t, fmt.Errorf("%q has '}' without '{'", s)
		}
		if open > 0 {
			t.device = append(t.device, idPiece{literal: rest[:open]})
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return t, fmt.Errorf("%q has '{' without '}'", s)
		}
		name := rest[open+1 : end]
		switch name {
		case "group_id", "edge_node_id", "device_id":
		default:
			return t, fmt.Errorf("%q: {%s} is not {group_id}, {edge_node_id} or {device_id}", s, name)
		}
		seen[name]++
		t.device = append(t.device, idPiece{field: name})
		rest = rest[end+1:]
	}
	if seen["edge_node_id"] != 1 || seen["device_id"] != 1 || seen["group_id"] > 1 {
		return t, fmt.Errorf("%q must have {edge_node_id} and {device_id} once each, and {group_id} at most once", s)
	}
	// The node's id: without {device_id} and the literal before it (or
	// after it, when it comes first).
	i := 0
	for t.device[i].field != "device_id" {
		i++
	}
	drop := map[int]bool{i: true}
	if i > 0 && t.device[i-1].field == "" {
		drop[i-1] = true
	} else if i == 0 && len(t.device) > 1 && t.device[1].field == "" {
		drop[1] = true
	}
	for j, p := range t.device {
		if !drop[j] {
			t.node = append(t.node, p)
		}
	}
	return t, nil
}

// ids returns the device id of a topic's device (or, for an edge node's
// own messages, the node's) and the edge node's id.
func (t *idTemplate) ids(topic sparkplug.Topic) (device, node string) {
	fill := func(pieces []idPiece) string {
		var b strings.Builder
		for _, p := range pieces {
			switch p.field {
			case "":
				b.WriteString(p.literal)
			case "group_id":
				b.WriteString(topic.Group)
			case "edge_node_id":
				b.WriteString(topic.EdgeNode)
			default:
				b.WriteString(topic.Device)
			}
		}
		return b.String()
	}
	node = fill(t.node)
	if !topic.IsDevice() {
		return node, node
	}
	return fill(t.device), node
}
