package rules

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/transforms/aggregate"
)

func TestLoadSample(t *testing.T) {
	fromJSON, err := Load("../../testdata/rules/rules.json")
	require.NoError(t, err)
	require.Len(t, fromJSON, 3)
	assert.Equal(t, "overheat", fromJSON[0].Name)
	assert.Equal(t, 15*time.Minute, fromJSON[0].Cooldown)
	assert.Equal(t, map[string]string{"site": "berlin", "model": "x1"}, fromJSON[1].Scope)
	assert.JSONEq(t, `{"action":"shutdown","reason":"overheat"}`, string(fromJSON[0].Command))

	fromYAML, err := Load("../../testdata/rules/rules.yaml")
	require.NoError(t, err)
	require.Len(t, fromYAML, len(fromJSON))
	for i := range fromJSON {
		assert.JSONEq(t, string(fromJSON[i].Command), string(fromYAML[i].Command), "rule %d", i)
		fromYAML[i].Command = fromJSON[i].Command
	}
	assert.Equal(t, fromJSON, fromYAML)
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	_, err := Load(filepath.Join(dir, "missing.json"))
	assert.ErrorContains(t, err, "missing.json")
	_, err = Load(write("rules.toml", ""))
	assert.ErrorContains(t, err, `unknown file type ".toml"`)
	_, err = Load(write("bad.yaml", "rules: [name: x"))
	assert.ErrorContains(t, err, "parsing YAML")
	_, err = Load(write("bad.yml", "rules:\n  - name: x\n    metric: m\n    op: '>'\n    value: 1\n    cooldown: 5 minutes\n"))
	assert.ErrorContains(t, err, `rule 0 ("x"): field cooldown`)
}

func TestParseJSONErrors(t *testing.T) {
	const ok = `"name":"r","metric":"m","op":">","value":1`
	tests := []struct {
		name, json, want string
	}{
		{"not JSON", `{`, "parsing JSON"},
		{"trailing value", `{"rules":[{` + ok + `}]} {}`, "more than one value"},
		{"no rules", `{"rules":[]}`, "no rules"},
		{"unknown field", `{"rules":[{` + ok + `,"treshold":2}]}`, `unknown field "treshold"`},
		{"missing value", `{"rules":[{"name":"r","metric":"m","op":">"}]}`, `rule 0 ("r"): field value: missing`},
		{"missing name", `{"rules":[{"metric":"m","op":">","value":1}]}`, `rule 0 (""): field name: missing`},
		{"missing metric", `{"rules":[{"name":"r","op":">","value":1}]}`, `field metric: missing`},
		{"bad op", `{"rules":[{"name":"r","metric":"m","op":"=>","value":1}]}`, `field op: unknown "=>"`},
		{"bad stat", `{"rules":[{` + ok + `,"stat":"avg"}]}`, `field stat: unknown "avg"`},
		{"bad cooldown", `{"rules":[{` + ok + `,"cooldown":"soon"}]}`, `field cooldown`},
		{"negative cooldown", `{"rules":[{` + ok + `,"cooldown":"-1m"}]}`, `field cooldown: must not be negative`},
		{"empty scope value", `{"rules":[{` + ok + `,"scope":{"site":""}}]}`, `field scope`},
		{"duplicate name", `{"rules":[{` + ok + `},{` + ok + `}]}`, `rule 1 ("r"): field name: the same as rule 0's`},
		{"second rule named", `{"rules":[{` + ok + `},{"name":"s","metric":"m","op":"~","value":1}]}`, `rule 1 ("s"): field op`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tt.json))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestValidate(t *testing.T) {
	good := Rule{Name: "r", Metric: "m", Op: ">", Value: 1}
	require.NoError(t, Validate([]Rule{good}))
	assert.ErrorContains(t, Validate(nil), "no rules")
	bad := good
	bad.Value = math.Inf(1)
	assert.ErrorContains(t, Validate([]Rule{bad}), "field value: must be a finite number")
	bad = good
	bad.Command = json.RawMessage(`{"a":`)
	assert.ErrorContains(t, Validate([]Rule{bad}), "field command: not valid JSON")
}

func TestMatch(t *testing.T) {
	a := aggregate.Aggregate{
		DeviceID: "d1", Metric: "temp", Count: 4, Min: 1, Max: 9, Sum: 20, Mean: 5, First: 2, Last: 8,
	}
	tests := []struct {
		stat, op string
		value    float64
		scope    map[string]string
		want     bool
		wantV    float64
	}{
		{"", ">", 4, nil, true, 5}, // mean by default
		{"mean", ">", 5, nil, false, 0},
		{"mean", ">=", 5, nil, true, 5},
		{"max", ">", 8.5, nil, true, 9},
		{"min", "<", 1, nil, false, 0},
		{"min", "<=", 1, nil, true, 1},
		{"first", "==", 2, nil, true, 2},
		{"last", "!=", 8, nil, false, 0},
		{"last", "!=", 7, nil, true, 8},
		{"count", "<", 5, nil, true, 4},
		{"sum", ">=", 20.5, nil, false, 0},
		{"sum", "==", 20, map[string]string{"site": "berlin"}, true, 20},
		{"sum", "==", 20, map[string]string{"site": "paris"}, false, 0},
		{"sum", "==", 20, map[string]string{"model": "x1"}, false, 0},
	}
	dev := map[string]string{"site": "berlin"}
	for _, tt := range tests {
		r := Rule{Name: "r", Metric: "temp", Stat: tt.stat, Op: tt.op, Value: tt.value, Scope: tt.scope}
		r.Stat, _ = statOf(r.Stat)
		v, ok := match(&r, &a, dev)
		assert.Equal(t, tt.want, ok, "%s %s %v scope %v", tt.stat, tt.op, tt.value, tt.scope)
		if ok {
			assert.Equal(t, tt.wantV, v, "%s %s %v", tt.stat, tt.op, tt.value)
		}
	}
	other := Rule{Name: "r", Metric: "humidity", Stat: StatMean, Op: ">", Value: 0}
	_, ok := match(&other, &a, nil)
	assert.False(t, ok, "another metric")
	scoped := Rule{Name: "r", Metric: "temp", Stat: StatMean, Op: ">", Value: 0, Scope: dev}
	_, ok = match(&scoped, &a, nil)
	assert.False(t, ok, "a scoped rule on a device without attributes")
	nan := a
	nan.Mean = math.NaN()
	_, ok = match(&Rule{Name: "r", Metric: "temp", Stat: StatMean, Op: "!=", Value: 0}, &nan, nil)
	assert.False(t, ok, "NaN")
}

func TestCommand(t *testing.T) {
	r := Rule{Name: "overheat", Metric: "temp", Stat: StatMax, Op: ">", Value: 80, Command: json.RawMessage(`{"action":"shutdown"}`)}
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	a := aggregate.Aggregate{DeviceID: "pump-1", Metric: "temp", WindowStart: start, WindowEnd: start.Add(5 * time.Minute), Max: 91.5, Pane: aggregate.PaneOnTime}
	pub, err := command(DefaultCommandTopic, &r, &a, 91.5)
	require.NoError(t, err)
	assert.Equal(t, "devices/pump-1/commands", pub.Topic)
	assert.Equal(t, map[string]string{"device_id": "pump-1", "rule": "overheat", "metric": "temp"}, pub.Fields)
	assert.JSONEq(t, `{"rule":"overheat","device_id":"pump-1","metric":"temp","stat":"max","op":">",
		"value":91.5,"threshold":80,"window_start":"2026-01-02T03:00:00Z","window_end":"2026-01-02T03:05:00Z",
		"pane":"on_time","command":{"action":"shutdown"}}`, string(pub.Payload))

	r.Command = nil
	pub, err = command("site/{rule}/{device_id}/{metric}/cmd", &r, &a, 91.5)
	require.NoError(t, err)
	assert.Equal(t, "site/overheat/pump-1/temp/cmd", pub.Topic)
	var p Payload
	require.NoError(t, json.Unmarshal(pub.Payload, &p))
	assert.Equal(t, "null", string(p.Command))

	for _, id := range []string{"", "a/b", "+", "#", "a+b", "x#", "nul\x00", "\xff", "/", "devices/x"} {
		a.DeviceID = id
		_, err := command(DefaultCommandTopic, &r, &a, 91.5)
		assert.ErrorContains(t, err, "unsafe device id", "%q", id)
	}
	a.DeviceID = "$SYS" // one safe level, but the topic must not start with '$'
	_, err = command("{device_id}/commands", &r, &a, 91.5)
	assert.ErrorContains(t, err, "invalid command topic")
	a.DeviceID = "ok"
	r.Name = "a/b"
	_, err = command("{rule}/{device_id}", &r, &a, 91.5)
	assert.ErrorContains(t, err, "unsafe rule")
}

func TestOptions(t *testing.T) {
	var c config
	require.NoError(t, CommandTopic("fleet/{device_id}/cmd/{rule}")(&c))
	assert.Equal(t, "fleet/{device_id}/cmd/{rule}", c.Topic)
	for tmpl, want := range map[string]string{
		"devices/commands":           "must contain {device_id}",
		"devices/{device_id}/{kind}": "placeholder other than",
		"devices/{device_id}/#":      "does not make a valid topic",
		"$SYS/{device_id}":           "does not make a valid topic",
		"devices//{device_id}":       "does not make a valid topic",
	} {
		err := CommandTopic(tmpl)(&c)
		require.Error(t, err, tmpl)
		assert.True(t, strings.HasPrefix(err.Error(), "option CommandTopic: "), err.Error())
		assert.Contains(t, err.Error(), want, tmpl)
	}
	assert.ErrorContains(t, AllowedLateness(-time.Second)(&c), "option AllowedLateness")
}
