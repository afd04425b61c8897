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
		{Topic: "devices/d2/telemetry", Payload: []byte("x"), QoS: 1, ReceivedAt: time.Date(2026, 12, 3, 1, 2, 3, 4, time.UTC),
			Properties: Properties{
				UserProperties: UserProperties{{"site", "north"}, {"site", ""}, {"", "v"}}, ContentType: "application/json",
				ResponseTopic: "replies/d2", CorrelationData: []byte{0, 1}, MessageExpiry: 90 * time.Second, PayloadUTF8: true,
			}},
		{Topic: "a", Payload: []byte("b"), Properties: Properties{PayloadUTF8: true}},
		{Topic: "a", Payload: []byte("b"), Properties: Properties{MessageExpiry: time.Second}},
	} {
		got, err := decodeMessage(encodeMessage(m))
		require.NoError(t, err)
		if m.Payload == nil {
			m.Payload = []byte{}
		}
		require.Equal(t, m, got)
	}
	for _, m := range []Message{{Topic: "a", Payload: []byte("b")}, {Topic: "a", Properties: Properties{UserProperties: UserProperties{{"k", "v"}}}}} {
		enc := encodeMessage(m)
		for i := range enc {
			_, err := decodeMessage(enc[:i])
			require.Error(t, err, "truncated at %d", i)
		}
		_, err := decodeMessage(append(enc, 0))
		require.Error(t, err, "trailing byte")
	}
}

// Messages without MQTT 5 properties encode as they did before the
// properties existed, and what was encoded then decodes now: a pipeline
// updated in place reads the elements its predecessor left in flight.
func TestMessageCoderIsBackwardCompatible(t *testing.T) {
	m := Message{Topic: "a/b", Payload: []byte("hi"), QoS: 1, Retained: true, ReceivedAt: time.Unix(0, 1_000_000_000).UTC()}
	// topic, payload (length-prefixed), QoS, flags (retained), receive time
	// in nanoseconds as a zig-zag varint: the form of the first coder.
	old := []byte{3, 'a', '/', 'b', 2, 'h', 'i', 1, 1, 0x80, 0xa8, 0xd6, 0xb9, 0x07}
	require.Equal(t, old, encodeMessage(m))
	got, err := decodeMessage(old)
	require.NoError(t, err)
	require.Equal(t, m, got)
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
