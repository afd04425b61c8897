package pubsubio

import (
	"sort"
	"testing"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

func TestWritePublishesAttributesAndOrderingKeys(t *testing.T) {
	for _, ordering := range []bool{true, false} {
		f := newFakePubSub(t, ordering)
		p, s := beam.NewPipelineWithRoot()
		in := beam.CreateList(s, []Message{
			{Data: []byte(`{"t":21.5}`), Attributes: map[string]string{"mqtt_topic": "devices/d1/telemetry", "mqtt_qos": "1"}, OrderingKey: "d1"},
			{Data: []byte(`{"t":19}`), Attributes: map[string]string{"mqtt_topic": "devices/d2/telemetry", "mqtt_qos": "0"}, OrderingKey: "d2"},
			{Data: []byte(`{"t":21.7}`), Attributes: map[string]string{"mqtt_topic": "devices/d1/telemetry", "mqtt_qos": "1"}, OrderingKey: "d1"},
		})
		Write(s, testTopic, in, Endpoint(f.Addr), Ordering(ordering), Batching(2, 1e6, 5e6))
		res, err := ptest.RunWithMetrics(p)
		require.NoError(t, err)
		require.Equal(t, int64(3), counter(res, "published"))
		require.Equal(t, int64(0), counter(res, "publish_errors"))

		var got []string
		for _, m := range f.Messages() {
			require.Equal(t, testTopic, m.Topic)
			got = append(got, string(m.Data)+"|"+m.Attributes["mqtt_topic"]+"|"+m.Attributes["mqtt_qos"]+"|"+m.OrderingKey)
		}
		sort.Strings(got)
		key := func(k string) string {
			if ordering {
				return k
			}
			return "" // ordering off: keys are not sent
		}
		require.Equal(t, []string{
			`{"t":19}|devices/d2/telemetry|0|` + key("d2"),
			`{"t":21.5}|devices/d1/telemetry|1|` + key("d1"),
			`{"t":21.7}|devices/d1/telemetry|1|` + key("d1"),
		}, got, "ordering %t", ordering)
	}
}

func TestWriteFailsWhenAPublishFails(t *testing.T) {
	srv := pstest.NewServer(pstest.WithErrorInjection("Publish", codes.PermissionDenied, "caller may not publish"))
	t.Cleanup(func() { require.NoError(t, srv.Close()) })

	p, s := beam.NewPipelineWithRoot()
	Write(s, testTopic, beam.Create(s, Message{Data: []byte("x")}), Endpoint(srv.Addr))
	_, err := ptest.RunWithMetrics(p)
	require.Error(t, err)
	require.Contains(t, err.Error(), "caller may not publish")
	require.Contains(t, err.Error(), "not published")
	require.Empty(t, srv.Messages())
}

// counter returns the committed value of a pubsubio counter.
func counter(res beam.PipelineResult, name string) int64 {
	return counterIn(res, "pubsubio", name)
}

// counterIn returns the committed value of counter name in namespace ns.
func counterIn(res beam.PipelineResult, ns, name string) int64 {
	var total int64
	for _, c := range res.Metrics().Query(func(r beam.MetricResult) bool {
		return r.Namespace() == ns && r.Name() == name
	}).Counters() {
		total += c.Committed
	}
	return total
}
