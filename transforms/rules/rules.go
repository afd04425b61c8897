// Package rules turns windowed aggregates into device commands: threshold
// rules loaded from a JSON or YAML file are evaluated on every
// aggregate.Aggregate, and a firing rule produces an mqttio.Publication
// addressed to the device's command topic, at most once per cooldown per
// device and rule. Device ids that would make an unsafe topic go to an error
// output instead of being published.
package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Statistics of an aggregate a rule can compare.
const (
	StatMean  = "mean"
	StatMax   = "max"
	StatMin   = "min"
	StatLast  = "last"
	StatFirst = "first"
	StatCount = "count"
	StatSum   = "sum"
)

// Rule is one threshold rule: it fires for an aggregate of Metric whose
// statistic Stat compares to Value with Op, on a device whose attributes
// match Scope.
type Rule struct {
	// Name identifies the rule in commands, metrics and errors; unique in a
	// rule set.
	Name string
	// Metric is the aggregate's metric the rule looks at.
	Metric string
	// Stat is the aggregate field compared: "mean" (the default when
	// empty), "max", "min", "first", "last", "count" or "sum".
	Stat string
	// Op is the comparison: ">", ">=", "<", "<=", "==" or "!=".
	Op string
	// Value is the threshold.
	Value float64
	// Scope, when set, limits the rule to devices whose attributes (see
	// Input) have all these values, e.g. {"site": "berlin"}.
	Scope map[string]string
	// Command is the JSON value (usually an object) sent to the device as
	// the "command" field of the payload; null when empty.
	Command json.RawMessage
	// Cooldown is how long after a command the rule stays silent for the
	// same device, measured in event time between window ends. Zero sends
	// a command for every window that breaks the threshold.
	Cooldown time.Duration
}

// fileRule is a rule as it is written in a rules file.
type fileRule struct {
	Name     string            `json:"name"`
	Metric   string            `json:"metric"`
	Stat     string            `json:"stat"`
	Op       string            `json:"op"`
	Value    *float64          `json:"value"`
	Scope    map[string]string `json:"scope"`
	Command  json.RawMessage   `json:"command"`
	Cooldown string            `json:"cooldown"`
}

type file struct {
	Rules []fileRule `json:"rules"`
}

// Load reads the rules of a file: JSON when its name ends in ".json", YAML
// when it ends in ".yaml" or ".yml". The file holds an object with a "rules"
// list; each rule has "name", "metric", "op", "value", and optionally
// "stat", "scope" (an object of strings), "command" (any JSON value) and
// "cooldown" (a Go duration such as "15m"). Unknown fields are errors, so
// that a misspelt field is not silently ignored. Every rule is validated
// (see Validate); an empty stat is returned as "mean".
func Load(path string) ([]Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules.Load: %w", err)
	}
	var rs []Rule
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".json":
		rs, err = ParseJSON(b)
	case ".yaml", ".yml":
		rs, err = ParseYAML(b)
	default:
		return nil, fmt.Errorf("rules.Load: %s: unknown file type %q (want .json, .yaml or .yml)", path, ext)
	}
	if err != nil {
		return nil, fmt.Errorf("rules.Load: %s: %w", path, err)
	}
	return rs, nil
}

// ParseJSON parses and validates rules in the JSON form Load reads.
func ParseJSON(b []byte) ([]Rule, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parsing JSON: more than one value")
	}
	return fromFile(f)
}

// ParseYAML parses and validates rules in the YAML form Load reads (the same
// fields as JSON).
func ParseYAML(b []byte) ([]Rule, error) {
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	// Through JSON, so that both forms share one set of checks.
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	return ParseJSON(j)
}

func fromFile(f file) ([]Rule, error) {
	if len(f.Rules) == 0 {
		return nil, errors.New(`no rules (want an object with a non-empty "rules" list)`)
	}
	rs := make([]Rule, len(f.Rules))
	for i, fr := range f.Rules {
		r := Rule{Name: fr.Name, Metric: fr.Metric, Stat: fr.Stat, Op: fr.Op, Scope: fr.Scope, Command: fr.Command}
		if fr.Value == nil {
			return nil, fmt.Errorf("rule %d (%q): field value: missing", i, fr.Name)
		}
		r.Value = *fr.Value
		if fr.Cooldown != "" {
			d, err := time.ParseDuration(fr.Cooldown)
			if err != nil {
				return nil, fmt.Errorf("rule %d (%q): field cooldown: %w", i, fr.Name, err)
			}
			r.Cooldown = d
		}
		rs[i] = r
	}
	if err := Validate(rs); err != nil {
		return nil, err
	}
	for i := range rs {
		rs[i].Stat, _ = statOf(rs[i].Stat)
	}
	return rs, nil
}

// Validate checks a rule set: every rule has a unique, non-empty name, a
// metric, a known stat and op, a finite value, a non-negative cooldown, scope
// entries with non-empty keys and values, and a command that is valid JSON.
// Errors name the rule by index and name, and the field.
func Validate(rs []Rule) error {
	if len(rs) == 0 {
		return errors.New("no rules")
	}
	seen := make(map[string]int, len(rs))
	for i, r := range rs {
		if err := validateRule(r); err != nil {
			return fmt.Errorf("rule %d (%q): %w", i, r.Name, err)
		}
		if j, ok := seen[r.Name]; ok {
			return fmt.Errorf("rule %d (%q): field name: the same as rule %d's", i, r.Name, j)
		}
		seen[r.Name] = i
	}
	return nil
}

func validateRule(r Rule) error {
	switch {
	case strings.TrimSpace(r.Name) == "":
		return errors.New("field name: missing")
	case strings.ContainsRune(r.Name, 0):
		return errors.New("field name: contains NUL")
	case r.Metric == "":
		return errors.New("field metric: missing")
	case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
		return fmt.Errorf("field value: must be a finite number, got %v", r.Value)
	case r.Cooldown < 0:
		return fmt.Errorf("field cooldown: must not be negative, got %v", r.Cooldown)
	case len(r.Command) > 0 && !json.Valid(r.Command):
		return errors.New("field command: not valid JSON")
	}
	if _, err := statOf(r.Stat); err != nil {
		return err
	}
	if _, err := compare(r.Op, 0, 0); err != nil {
		return err
	}
	for k, v := range r.Scope {
		if k == "" || v == "" {
			return fmt.Errorf("field scope: keys and values must not be empty, got %q: %q", k, v)
		}
	}
	return nil
}

// statOf normalizes a rule's Stat.
func statOf(stat string) (string, error) {
	switch stat {
	case "":
		return StatMean, nil
	case StatMean, StatMax, StatMin, StatFirst, StatLast, StatCount, StatSum:
		return stat, nil
	}
	return "", fmt.Errorf("field stat: unknown %q (want mean, max, min, first, last, count or sum)", stat)
}

func compare(op string, x, threshold float64) (bool, error) {
	switch op {
	case ">":
		return x > threshold, nil
	case ">=":
		return x >= threshold, nil
	case "<":
		return x < threshold, nil
	case "<=":
		return x <= threshold, nil
	case "==":
		return x == threshold, nil
	case "!=":
		return x != threshold, nil
	}
	return false, fmt.Errorf("field op: unknown %q (want >, >=, <, <=, == or !=)", op)
}
