package jobflags

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// check asserts that check accepts every ok value and refuses every bad
// one with an error naming the flag.
func check(t *testing.T, name string, fn func(string) error, ok, bad []string) {
	t.Helper()
	for _, v := range ok {
		assert.NoError(t, fn(v), "%s=%q", name, v)
	}
	for _, v := range bad {
		err := fn(v)
		require.Error(t, err, "%s=%q", name, v)
		assert.Contains(t, err.Error(), "--"+name+": ")
	}
}

func TestPubSubNames(t *testing.T) {
	check(t, "output_topic", func(v string) error { return PubSubTopic("output_topic", v) },
		[]string{"", "projects/my-project/topics/telemetry", "projects/example.com:p/topics/a.b-c"},
		[]string{"telemetry", "projects/p/subscriptions/s1x", "projects/P/topics/abc", "projects/p/topics/1ab"})
	check(t, "input_subscription", func(v string) error { return PubSubSubscription("input_subscription", v) },
		[]string{"", "projects/my-project/subscriptions/device-commands"},
		[]string{"device-commands", "projects/p/topics/abc", "projects/p/subscriptions/"})
}

func TestLocalEndpoint(t *testing.T) {
	check(t, "pubsub_endpoint", func(v string) error { return LocalEndpoint("pubsub_endpoint", v, true) },
		[]string{"", "localhost:8085", "127.0.0.1:1"}, []string{"localhost", ":8085", "localhost:"})
	assert.ErrorContains(t, LocalEndpoint("pubsub_endpoint", "localhost:8085", false), "--pubsub_endpoint: is for local runs only")
}

func TestTopicTemplate(t *testing.T) {
	check(t, "command_topic", func(v string) error { return TopicTemplate("command_topic", v, "device_id") },
		[]string{"devices/{device_id}/commands", "cmd/{device_id}", "devices/dev-{device_id}/set", "all/commands"},
		[]string{"devices/{site}/commands", "devices/{}/x", "devices/{device_id/x", "devices/{device_id}}/x",
			"devices/+/{device_id}", "devices/{device_id}/#", "devices//{device_id}", "$SYS/{device_id}", ""})
	check(t, "mqtt_topic_template", func(v string) error { return TopicTemplate("mqtt_topic_template", v) },
		[]string{"sites/{site}/devices/{device_id}/commands"}, []string{"sites/{site}/+"})
}

func TestDeviceTopic(t *testing.T) {
	check(t, "device_topic", func(v string) error { return DeviceTopic("device_topic", v) },
		[]string{"devices/{device_id}/#", "+/{device_id}/telemetry", "{device_id}"},
		[]string{"devices/+/#", "devices/{device_id}/{device_id}", "devices/x{device_id}/#", "devices/{device_id}/#/x", "devices/{kind}/{device_id}"})
}

func TestValidateOutputs(t *testing.T) {
	dir, err := ValidateOutputs(Prism, "output_table", "", "", "")
	require.NoError(t, err)
	assert.Equal(t, "out", dir, "local runs default to ./out")
	dir, err = ValidateOutputs(Prism, "output_table", "p-1234:ds.t", "", "embedded")
	require.NoError(t, err)
	assert.Empty(t, dir)
	for _, tc := range []struct{ runner, table, dir, endpoint, want string }{
		{Dataflow, "", "", "", "--output_table: is required on dataflow"},
		{Prism, "p-1234:ds.t", "x", "", "--output_dir: give --output_table or --output_dir, not both"},
		{Dataflow, "p-1234:ds.t", "", "embedded", "--bigquery_endpoint: is for local runs only"},
		{Prism, "", "", "embedded", "--bigquery_endpoint: needs --output_table"},
	} {
		_, err := ValidateOutputs(tc.runner, "output_table", tc.table, tc.dir, tc.endpoint)
		assert.ErrorContains(t, err, tc.want, "%+v", tc)
	}
}
