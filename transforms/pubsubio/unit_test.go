package pubsubio

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/stretchr/testify/require"
)

func TestOptionErrorsNameTheOption(t *testing.T) {
	for want, opt := range map[string]Option{
		"option Endpoint": Endpoint("localhost"),
		"pubsubio: nil":   nil,
	} {
		_, s := beam.NewPipelineWithRoot()
		_, err := TryRead(s, testSub, opt)
		require.ErrorContains(t, err, want)
		err = TryWrite(s, testTopic, beam.Create(s, Message{}), opt)
		require.ErrorContains(t, err, want)
	}
	for want, opt := range map[string]WriteOption{
		"option Batching":       Batching(0, 1, time.Millisecond),
		"option PublishTimeout": PublishTimeout(0),
		"nil WriteOption":       nil,
	} {
		_, s := beam.NewPipelineWithRoot()
		require.ErrorContains(t, TryWrite(s, testTopic, beam.Create(s, Message{}), opt), want)
	}
	for want, opt := range map[string]ReadOption{
		"option Readers":           Readers(0),
		"option MaxRecords":        MaxRecords(0),
		"option MaxReadTime":       MaxReadTime(-time.Second),
		"option MaxOutOfOrderness": MaxOutOfOrderness(-time.Second),
		"option IdleWatermark":     IdleWatermark(0),
		"option WatermarkStep":     WatermarkStep(-time.Second),
		"option MaxBuffered":       MaxBuffered(0),
		"option MaxBundle":         MaxBundle(1, 0),
		"option SessionIdle":       SessionIdle(0),
		"nil ReadOption":           nil,
	} {
		_, s := beam.NewPipelineWithRoot()
		_, err := TryRead(s, testSub, opt)
		require.ErrorContains(t, err, want)
	}
}

func TestNamesAreValidated(t *testing.T) {
	_, s := beam.NewPipelineWithRoot()
	for _, bad := range []string{"", "telemetry", "projects/p/topics/", "projects/p/subscriptions/telemetry-job", "projects//topics/t1", "projects/P/topics/t1"} {
		require.ErrorContains(t, TryWrite(s, bad, beam.Create(s, Message{})), `topic "`+bad+`"`)
	}
	for _, bad := range []string{"", "sub", "projects/p/topics/telemetry", "projects/p/subscriptions/x", "projects/p/q/subscriptions/sub"} {
		_, err := TryRead(s, bad)
		require.ErrorContains(t, err, `subscription "`+bad+`"`)
	}
	require.ErrorContains(t, TryWrite(s, testTopic, beam.Create(s, "not a message")), "must be a PCollection<pubsubio.Message>")
	require.Panics(t, func() { Write(s, "bad", beam.Create(s, Message{})) })
	require.Panics(t, func() { Read(s, "bad") })
}

func TestMessageCoderRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{},
		{Data: []byte("x")},
		{Data: []byte(`{"t":1}`), Attributes: map[string]string{"mqtt_topic": "devices/d1/telemetry", "mqtt_qos": "1", "": ""},
			OrderingKey: "d1", ID: "42", PublishTime: time.Unix(1714564790, 123456789).UTC()},
	} {
		got, err := decodeMessage(encodeMessage(m))
		require.NoError(t, err)
		if len(m.Data) == 0 {
			require.Empty(t, got.Data)
			got.Data = m.Data
		}
		require.Equal(t, m, got)
	}
	enc := encodeMessage(Message{Data: []byte("abc"), Attributes: map[string]string{"k": "v"}})
	for i := range len(enc) {
		_, err := decodeMessage(enc[:i])
		require.ErrorIs(t, err, errCorruptMessage, "truncated at %d", i)
	}
}
