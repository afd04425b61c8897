package pubsubio

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/stretchr/testify/require"
)

func init() {
	register.Function1x1(failMessage)
	register.Function1x1(messageID)
	register.Function2x1(roundTripLine)
}

// failMessage fails every bundle that reaches it, as a step that crashes.
func failMessage(Message) error { return errors.New("downstream step failed") }

func messageID(m Message) string { return m.ID }

// wantLines is what messageLine gives for the messages fakePubSub.publish
// published with ids.
func wantLines(ids []string) []any {
	lines := make([]any, len(ids))
	for i, id := range ids {
		lines[i] = fmt.Sprintf("m%d|n=%d||%s|ts=publish_time:true", i, i, id)
	}
	return lines
}

func TestReadEmitsMessagesAtTheirPublishTime(t *testing.T) {
	f := newFakePubSub(t, false)
	ids := f.publish(20)

	p, s := beam.NewPipelineWithRoot()
	msgs := Read(s, testSub, Endpoint(f.Addr), MaxRecords(20), MaxBundle(4, time.Second))
	passert.Equals(s, beam.ParDo(s, messageLine, msgs), wantLines(ids)...)
	beam.ParDo0(s, &checkUnackedFn{Addr: f.Addr}, msgs)
	res, err := ptest.RunWithMetrics(p)
	require.NoError(t, err)

	require.Equal(t, int64(20), counter(res, "messages_read"))
	require.Equal(t, int64(20), counter(res, "acks"))
	require.Equal(t, int64(20), counterIn(res, "test", "seen"))
	require.Zero(t, counterIn(res, "test", "acked_early"), "a message was acknowledged before its bundle committed")
	require.Equal(t, 20, f.acked(ids), "every message is acknowledged once its bundle committed")
	for _, id := range ids {
		require.Equal(t, 1, f.Message(id).Deliveries, "message %s delivered again", id)
	}
}

func TestReadSplitsAmongReaders(t *testing.T) {
	f := newFakePubSub(t, false)
	ids := f.publish(30)

	p, s := beam.NewPipelineWithRoot()
	msgs := Read(s, testSub, Endpoint(f.Addr), Readers(3), MaxReadTime(3*time.Second))
	passert.Equals(s, beam.ParDo(s, messageLine, msgs), wantLines(ids)...)
	res, err := ptest.RunWithMetrics(p)
	require.NoError(t, err)
	require.Equal(t, int64(30), counter(res, "acks"))
	require.Equal(t, 30, f.acked(ids))
}

// TestReadRedeliversWhatAFailedRunDidNotCommit reads messages in a pipeline
// whose next step fails, so no bundle commits and nothing may be
// acknowledged; then the reader stops, gracefully (nacking what it holds) or
// as in a crash (Pub/Sub redelivers after the ack deadline), and a new read
// gets every message.
func TestReadRedeliversWhatAFailedRunDidNotCommit(t *testing.T) {
	for name, stop := range map[string]func(f *fakePubSub){
		"nack on close": func(*fakePubSub) { closeSessions() },
		"crash": func(f *fakePubSub) {
			crashSessions()
			f.advance(time.Minute) // past every ack deadline the client set
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakePubSub(t, false)
			ids := f.publish(5)

			p, s := beam.NewPipelineWithRoot()
			beam.ParDo0(s, failMessage, Read(s, testSub, Endpoint(f.Addr), MaxRecords(5)))
			err := ptest.Run(p)
			require.ErrorContains(t, err, "downstream step failed")
			require.Zero(t, f.acked(ids), "acknowledged although no bundle committed")

			delivered := map[string]int{} // the messages run 1 received
			for _, id := range ids {
				if n := f.Message(id).Deliveries; n > 0 {
					delivered[id] = n
				}
			}
			require.NotEmpty(t, delivered)
			stop(f)
			require.Zero(t, f.acked(ids))

			p, s = beam.NewPipelineWithRoot()
			msgs := Read(s, testSub, Endpoint(f.Addr), MaxRecords(5))
			passert.Equals(s, beam.ParDo(s, messageLine, msgs), wantLines(ids)...)
			require.NoError(t, ptest.Run(p))
			require.Equal(t, 5, f.acked(ids))
			for id, n := range delivered {
				require.Greater(t, f.Message(id).Deliveries, n, "message %s was not redelivered", id)
			}
		})
	}
}

func TestWriteThenRead(t *testing.T) {
	f := newFakePubSub(t, true)
	want := []Message{
		{Data: []byte(`{"t":21.5}`), Attributes: map[string]string{"mqtt_topic": "devices/d1/telemetry", "mqtt_qos": "1"}, OrderingKey: "d1"},
		{Data: []byte(`{"t":19}`), Attributes: map[string]string{"mqtt_topic": "devices/d2/telemetry", "mqtt_qos": "1"}, OrderingKey: "d2"},
		{Data: []byte(`{"t":21.7}`), Attributes: map[string]string{"mqtt_topic": "devices/d1/telemetry", "mqtt_qos": "1"}, OrderingKey: "d1"},
	}
	p, s := beam.NewPipelineWithRoot()
	Write(s, testTopic, beam.CreateList(s, want), Endpoint(f.Addr), Ordering(true))
	got := Read(s, testSub, Endpoint(f.Addr), MaxRecords(3))
	ids := beam.ParDo(s, messageID, got)
	passert.Count(s, ids, "ids", 3)
	passert.Equals(s, beam.ParDo(s, roundTripLine, got),
		`{"t":21.5}|devices/d1/telemetry|1|d1|ts:true`,
		`{"t":19}|devices/d2/telemetry|1|d2|ts:true`,
		`{"t":21.7}|devices/d1/telemetry|1|d1|ts:true`)
	require.NoError(t, ptest.Run(p))

	published := f.Messages()
	require.Len(t, published, 3)
	for _, m := range published {
		require.Equal(t, 1, m.Acks, "message %s", m.ID)
	}
}

// roundTripLine describes a message read back after Write, with whether its
// element timestamp is its publish time.
func roundTripLine(et beam.EventTime, m Message) string {
	return fmt.Sprintf("%s|%s|%s|%s|ts:%t", m.Data, m.Attributes["mqtt_topic"], m.Attributes["mqtt_qos"], m.OrderingKey,
		et.ToTime().Equal(m.PublishTime.Truncate(time.Millisecond)))
}

func TestReadFailsOnAMissingSubscription(t *testing.T) {
	f := newFakePubSub(t, false)
	p, s := beam.NewPipelineWithRoot()
	Read(s, "projects/test-project/subscriptions/nope", Endpoint(f.Addr), MaxReadTime(10*time.Second))
	err := ptest.Run(p)
	require.ErrorContains(t, err, "projects/test-project/subscriptions/nope")
}

func TestBoundedReadOnTheDirectRunner(t *testing.T) {
	f := newFakePubSub(t, false)
	ids := f.publish(10)

	p, s := beam.NewPipelineWithRoot()
	msgs := Read(s, testSub, Endpoint(f.Addr), MaxRecords(10))
	passert.Equals(s, beam.ParDo(s, messageLine, msgs), wantLines(ids)...)
	beam.ParDo0(s, &checkUnackedFn{Addr: f.Addr}, msgs)
	res, err := beam.Run(context.Background(), "direct", p)
	require.NoError(t, err)
	require.Equal(t, int64(10), counterIn(res, "test", "seen"))
	require.Zero(t, counterIn(res, "test", "acked_early"), "a message was acknowledged before the steps after the read processed it")
	require.Equal(t, 10, f.acked(ids))
}

func TestUnboundedReadOnTheDirectRunnerNamesPrism(t *testing.T) {
	f := newFakePubSub(t, false)
	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, failMessage, Read(s, testSub, Endpoint(f.Addr)))
	_, err := beam.Run(context.Background(), "direct", p)
	require.ErrorContains(t, err, "prism")
	require.ErrorContains(t, err, "MaxRecords or MaxReadTime")
}
