package mqttio

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/stretchr/testify/require"
)

func TestValidateFilter(t *testing.T) {
	for _, ok := range []string{"a", "a/b", "devices/+/telemetry", "devices/#", "#", "+", "+/+/t", "$share/g/devices/+/t", "a//b"} {
		require.NoError(t, ValidateFilter(ok), ok)
	}
	for filter, reason := range map[string]string{
		"":                                 "empty",
		"a/#/b":                            "last level",
		"a/b#":                             "whole level",
		"a/+b/c":                           "whole level",
		"a\x00b":                           "NUL",
		"$share/g":                         "$share/{group}/{filter}",
		"$share//a":                        "$share/{group}/{filter}",
		"$share/g+x/a":                     "group",
		string([]byte{0xff}):               "UTF-8",
		strings.Repeat("a", maxTopicLen+1): "MQTT limit",
	} {
		err := ValidateFilter(filter)
		require.Error(t, err, "%q", filter)
		require.Contains(t, err.Error(), reason, "%q", filter)
	}
}

func TestValidateTopic(t *testing.T) {
	require.NoError(t, ValidateTopic("devices/d1/commands"))
	for topic, reason := range map[string]string{
		"devices/+/commands": "wildcard",
		"devices/#":          "wildcard",
		"devices//commands":  "empty level",
		"/devices":           "empty level",
		"devices/":           "empty level",
		"$SYS/x":             "reserve",
		"a\x00":              "NUL",
	} {
		err := ValidateTopic(topic)
		require.Error(t, err, "%q", topic)
		require.Contains(t, err.Error(), reason, "%q", topic)
	}
}

func TestMessageCoderRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{},
		{Topic: "devices/d1/telemetry", Payload: []byte(`{"t":1}`), QoS: 2, Retained: true, Duplicate: true,
			ReceivedAt: time.Date(2026, 11, 24, 1, 2, 3, 456789, time.UTC)},
		{Topic: "ü/ß", Payload: make([]byte, 70000), QoS: 1, Duplicate: true},
	} {
		got, err := decodeMessage(encodeMessage(m))
		require.NoError(t, err)
		if m.Payload == nil {
			m.Payload = []byte{}
		}
		require.Equal(t, m, got)
	}
	enc := encodeMessage(Message{Topic: "a", Payload: []byte("b")})
	for i := range enc {
		_, err := decodeMessage(enc[:i])
		require.Error(t, err, "truncated at %d", i)
	}
}

func TestTryReadNamesTheBadArgument(t *testing.T) {
	for want, args := range map[string]struct {
		brokers, filters []string
		opts             []ReadOption
	}{
		"option QoS":            {[]string{"tcp://h:1883"}, []string{"a"}, []ReadOption{QoS(3)}},
		"option Readers":        {[]string{"tcp://h:1883"}, []string{"a"}, []ReadOption{Readers(0)}},
		"option MaxRecords":     {[]string{"tcp://h:1883"}, []string{"a"}, []ReadOption{MaxRecords(0)}},
		"option TLSCAFile":      {[]string{"tcp://h:1883"}, []string{"a"}, []ReadOption{TLSCAFile("/nonexistent/ca.pem")}},
		"option InflightWindow": {[]string{"tcp://h:1883"}, []string{"a"}, []ReadOption{InflightWindow(0)}},
		"option WatermarkStep":  {[]string{"tcp://h:1883"}, []string{"a"}, []ReadOption{WatermarkStep(-time.Second)}},
		"scheme must be":        {[]string{"http://h:1883"}, []string{"a"}, nil},
		"no port":               {[]string{"tcp://h"}, []string{"a"}, nil},
		"Credentials option":    {[]string{"tcp://u:secret@h:1883"}, []string{"a"}, nil},
		"no broker URL":         {nil, []string{"a"}, nil},
		"no topic filter":       {[]string{"tcp://h:1883"}, nil, nil},
		"topic filter":          {[]string{"tcp://h:1883"}, []string{"a/#/b"}, nil},
	} {
		_, s := beam.NewPipelineWithRoot()
		_, err := TryRead(s, args.brokers, args.filters, args.opts...)
		require.Error(t, err, want)
		require.Contains(t, err.Error(), want)
		require.NotContains(t, err.Error(), "secret", "credentials in a URL must not be echoed")
	}
}
