package metadata

import (
	"strings"
	"testing"
)

const valid = `{"name": "t", "description": "d", "streaming": true, "supportsAtLeastOnce": true,
  "parameters": [{"name": "broker", "label": "Broker", "helpText": "URL", "paramType": "TEXT", "regexes": ["^ssl://[a-z]+:[0-9]+$"]}]}`

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"unknown field", strings.Replace(valid, `"label"`, `"lable"`, 1), `unknown field "lable"`},
		{"not streaming", strings.Replace(valid, `"streaming": true`, `"streaming": false`, 1), "streaming is not true"},
		{"no at-least-once", strings.Replace(valid, `"supportsAtLeastOnce": true`, `"supportsAtLeastOnce": false`, 1), "supportsAtLeastOnce"},
		{"no name", strings.Replace(valid, `"name": "t"`, `"name": ""`, 1), "name is empty"},
		{"flag name", strings.Replace(valid, `"broker"`, `"Broker-URL"`, 1), "snake_case"},
		{"no help", strings.Replace(valid, `"helpText": "URL"`, `"helpText": ""`, 1), "helpText is empty"},
		{"unknown type", strings.Replace(valid, `"TEXT"`, `"STRING"`, 1), `paramType "STRING"`},
		{"unanchored regex", strings.Replace(valid, `^ssl`, `ssl`, 1), "not anchored"},
		{"perl class", strings.Replace(valid, `[0-9]+`, `\\d+`, 1), "not portable"},
		{"bracket class", strings.Replace(valid, `[0-9]+`, `[[:digit:]]+`, 1), "not portable"},
		{"non-capturing group", strings.Replace(valid, `^ssl`, `^(?:ssl)`, 1), "not portable"},
		{"invalid regex", strings.Replace(valid, `[0-9]+`, `[0-9+`, 1), "not POSIX ERE"},
		{"repeated parameter", strings.Replace(valid, `}]}`, `}, {"name": "broker", "label": "B", "helpText": "h", "paramType": "TEXT"}]}`, 1), "repeated"},
		{"trailing data", valid + "{}", "data after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Parse([]byte(valid)); err != nil {
		t.Fatalf("Parse(valid): %v", err)
	}
}

func TestSplice(t *testing.T) {
	readme := "# demo\n\n" + BeginTable + "\nold table\n" + EndTable + "\n\nmore text\n"
	got, err := Splice([]byte(readme), "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# demo\n\n" + BeginTable + "\n| new |\n" + EndTable + "\n\nmore text\n"
	if string(got) != want {
		t.Fatalf("Splice:\n%s\nwant:\n%s", got, want)
	}
	if _, err := Splice([]byte("# no markers\n"), "x"); err == nil || !strings.Contains(err.Error(), "BEGIN PARAMETERS") {
		t.Fatalf("Splice without markers: got %v, want an error naming the marker", err)
	}
}
