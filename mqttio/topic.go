package mqttio

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxTopicLen is the MQTT limit on a topic's length in bytes.
const maxTopicLen = 65535

// ValidateTopic reports whether topic is safe to publish to: not empty, at
// most 65535 bytes of valid UTF-8, no wildcard ('+', '#'), no NUL, no empty
// level ("a//b", a leading or trailing '/'), and not a broker-reserved topic
// starting with '$'.
func ValidateTopic(topic string) error {
	if err := checkTopicChars(topic); err != nil {
		return err
	}
	if strings.HasPrefix(topic, "$") {
		return fmt.Errorf("topic %q starts with '$', which brokers reserve", topic)
	}
	for rest, more := topic, true; more; {
		var level string
		level, rest, more = strings.Cut(rest, "/") // no allocation: Write checks every topic
		if level == "" {
			return fmt.Errorf("topic %q has an empty level", topic)
		}
		if strings.ContainsAny(level, "+#") {
			return fmt.Errorf("topic %q contains a wildcard ('+' or '#')", topic)
		}
	}
	return nil
}

// ValidateFilter reports whether filter is a valid MQTT topic filter: '+'
// only as a whole level, '#' only as the whole last level, no NUL, valid
// UTF-8, at most 65535 bytes. A shared-subscription filter
// ($share/{group}/{filter}) is checked the same way after its prefix.
func ValidateFilter(filter string) error {
	if err := checkTopicChars(filter); err != nil {
		return err
	}
	rest := filter
	if strings.HasPrefix(filter, "$share/") {
		parts := strings.SplitN(filter, "/", 3)
		if len(parts) < 3 || parts[1] == "" || parts[2] == "" {
			return fmt.Errorf("shared subscription %q must be $share/{group}/{filter}", filter)
		}
		if err := checkTopicLevel(parts[1]); err != nil {
			return fmt.Errorf("shared subscription %q: group: %w", filter, err)
		}
		rest = parts[2]
	}
	levels := strings.Split(rest, "/")
	for i, level := range levels {
		switch {
		case level == "#" && i != len(levels)-1:
			return fmt.Errorf("filter %q: '#' must be the last level", filter)
		case level != "#" && level != "+" && strings.ContainsAny(level, "+#"):
			return fmt.Errorf("filter %q: a wildcard must fill a whole level", filter)
		}
	}
	return nil
}

func checkTopicChars(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > maxTopicLen:
		return fmt.Errorf("is %d bytes long, more than the MQTT limit of %d", len(s), maxTopicLen)
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return errors.New("contains NUL")
	}
	return nil
}

// checkTopicLevel checks a value that must form exactly one topic level.
func checkTopicLevel(s string) error {
	if err := checkTopicChars(s); err != nil {
		return err
	}
	if strings.ContainsAny(s, "/+#") {
		return fmt.Errorf("%q contains '/', '+' or '#'", s)
	}
	return nil
}

// template is a parsed topic template such as "devices/{device_id}/commands":
// literal text alternating with field names.
type template struct {
	literals []string // len(fields)+1 pieces of literal text
	fields   []string
}

func parseTemplate(tmpl string) (template, error) {
	var t template
	if err := checkTopicChars(tmpl); err != nil {
		return t, err
	}
	rest := tmpl
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.ContainsRune(rest, '}') {
				return t, fmt.Errorf("template %q has '}' without '{'", tmpl)
			}
			t.literals = append(t.literals, rest)
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return t, fmt.Errorf("template %q has '{' without '}'", tmpl)
		}
		name := rest[open+1 : open+end]
		if name == "" || strings.ContainsAny(name, "{/+#") {
			return t, fmt.Errorf("template %q has an invalid field name %q", tmpl, name)
		}
		t.literals = append(t.literals, rest[:open])
		t.fields = append(t.fields, name)
		rest = rest[open+end+1:]
	}
	// The template with placeholder values must itself be a valid topic.
	if err := ValidateTopic(t.fill(func(string) string { return "x" })); err != nil {
		return t, fmt.Errorf("template %q does not make a valid topic: %w", tmpl, err)
	}
	return t, nil
}

func (t template) fill(value func(string) string) string {
	n := 0 // size the topic first: one allocation per element
	for i, lit := range t.literals {
		n += len(lit)
		if i < len(t.fields) {
			n += len(value(t.fields[i]))
		}
	}
	var b strings.Builder
	b.Grow(n)
	for i, lit := range t.literals {
		b.WriteString(lit)
		if i < len(t.fields) {
			b.WriteString(value(t.fields[i]))
		}
	}
	return b.String()
}

// Expand builds the topic from fields, rejecting values that would change
// the topic's shape: a missing or empty value, or one containing '/', '+',
// '#' or NUL.
func (t template) Expand(fields map[string]string) (string, error) {
	for _, name := range t.fields {
		v, ok := fields[name]
		if !ok {
			return "", fmt.Errorf("topic template field %q is missing", name)
		}
		if err := checkTopicLevel(v); err != nil {
			return "", fmt.Errorf("topic template field %q: value %w", name, err)
		}
	}
	topic := t.fill(func(name string) string { return fields[name] })
	if err := ValidateTopic(topic); err != nil {
		return "", err
	}
	return topic, nil
}

// ValidateBrokers checks broker URLs as Read and Write do: a scheme of tcp,
// mqtt, ssl, tls, mqtts, ws or wss, a host, a port, and no credentials (they
// belong in the Credentials option, where they are never logged).
func ValidateBrokers(brokers []string) error {
	_, err := parseBrokers(brokers)
	return err
}
