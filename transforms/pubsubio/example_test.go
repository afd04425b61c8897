package pubsubio_test

import (
	"context"
	"fmt"
	"log"
	"sort"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/transforms/pubsubio"
)

func printMessage(m pubsubio.Message) {
	fmt.Printf("%s from %s\n", m.Data, m.Attributes["mqtt_topic"])
}

func init() { register.Function1x0(printMessage) }

// startPubSub starts an in-process Pub/Sub server with a topic and a
// subscription to it.
func startPubSub(topic, subscription string) *pstest.Server {
	srv := pstest.NewServer()
	ctx := context.Background()
	if _, err := srv.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		log.Fatal(err)
	}
	if _, err := srv.GServer.CreateSubscription(ctx, &pubsubpb.Subscription{Name: subscription, Topic: topic, AckDeadlineSeconds: 10}); err != nil {
		log.Fatal(err)
	}
	return srv
}

// Publish readings to a topic, the MQTT topic in an attribute and one
// ordering key per device. A real job leaves out Endpoint and publishes to
// Google Cloud.
func ExampleWrite() {
	srv := startPubSub("projects/demo/topics/telemetry", "projects/demo/subscriptions/archive")
	defer srv.Close()

	p, s := beam.NewPipelineWithRoot()
	readings := beam.CreateList(s, []pubsubio.Message{
		{Data: []byte(`{"temperature":21.5}`), Attributes: map[string]string{"mqtt_topic": "devices/d1/telemetry"}, OrderingKey: "d1"},
		{Data: []byte(`{"temperature":19.0}`), Attributes: map[string]string{"mqtt_topic": "devices/d2/telemetry"}, OrderingKey: "d2"},
	})
	pubsubio.Write(s, "projects/demo/topics/telemetry", readings,
		pubsubio.Ordering(true), pubsubio.Endpoint(srv.Addr))
	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		log.Fatal(err)
	}

	var got []string
	for _, m := range srv.Messages() {
		got = append(got, fmt.Sprintf("%s key=%s %s", m.Attributes["mqtt_topic"], m.OrderingKey, m.Data))
	}
	sort.Strings(got)
	for _, line := range got {
		fmt.Println(line)
	}
	// Output:
	// devices/d1/telemetry key=d1 {"temperature":21.5}
	// devices/d2/telemetry key=d2 {"temperature":19.0}
}

// Read three messages from a subscription and print them. A real job leaves
// out MaxRecords and Endpoint, and runs until it is stopped.
func ExampleRead() {
	srv := startPubSub("projects/demo/topics/telemetry", "projects/demo/subscriptions/telemetry-job")
	defer srv.Close()
	for _, m := range [][2]string{
		{"devices/d1/telemetry", `{"temperature":21.5}`},
		{"devices/d2/telemetry", `{"temperature":19.0}`},
		{"devices/d1/telemetry", `{"temperature":21.7}`},
	} {
		srv.Publish("projects/demo/topics/telemetry", []byte(m[1]), map[string]string{"mqtt_topic": m[0]})
	}

	p, s := beam.NewPipelineWithRoot()
	msgs := pubsubio.Read(s, "projects/demo/subscriptions/telemetry-job",
		pubsubio.MaxRecords(3), pubsubio.Endpoint(srv.Addr))
	beam.ParDo0(s, printMessage, msgs)
	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		log.Fatal(err)
	}
	// Unordered output:
	// {"temperature":21.5} from devices/d1/telemetry
	// {"temperature":19.0} from devices/d2/telemetry
	// {"temperature":21.7} from devices/d1/telemetry
}
