package mqttio_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

// With MQTT 5 a command carries properties: here where the device is to
// answer (the response topic, with correlation data to match the answer to
// the command), the payload's content type and a user property.
func ExampleProtocolVersion() {
	broker, err := embeddedbroker.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	commands := listen5(broker.URL(), "pump-1", "devices/pump-1/commands")

	p, s := beam.NewPipelineWithRoot()
	cmds := beam.Create(s, mqttio.Publication{
		Topic: "devices/pump-1/commands", Payload: []byte(`{"action":"start"}`),
		Properties: mqttio.Properties{
			ResponseTopic: "backend/replies", CorrelationData: []byte("cmd-42"), ContentType: "application/json",
			UserProperties: mqttio.UserProperties{{Name: "issued-by", Value: "rules"}},
		},
	})
	mqttio.Write(s, []string{broker.URL()}, cmds, mqttio.ProtocolVersion(5), mqttio.QoS(1))
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}

	select {
	case m := <-commands:
		fmt.Printf("%s received %s (%s)\n", m.Topic, m.Payload, m.Properties.ContentType)
		fmt.Printf("answer on %s with correlation data %s; issued by %s\n",
			m.Properties.ResponseTopic, m.Properties.CorrelationData, m.Properties.User.Get("issued-by"))
	case <-time.After(10 * time.Second):
		log.Fatal("the device received no command")
	}
	// Output:
	// devices/pump-1/commands received {"action":"start"} (application/json)
	// answer on backend/replies with correlation data cmd-42; issued by rules
}

// listen5 connects an MQTT 5 device subscribed to filter and returns the
// messages it receives.
func listen5(url, id, filter string) <-chan *paho.Publish {
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "tcp://"))
	if err != nil {
		log.Fatal(err)
	}
	received := make(chan *paho.Publish, 10)
	device := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) { received <- pr.Packet; return true, nil },
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := device.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}); err != nil {
		log.Fatal(err)
	}
	if _, err := device.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		log.Fatal(err)
	}
	return received
}

// Enhanced authentication: a SCRAM-SHA-256 exchange proves the password to
// the broker (here the embedded one, which admits nothing else) without
// sending it. On Dataflow take the password from Secret Manager with
// CredentialsFrom.
func ExampleAuth() {
	broker, err := embeddedbroker.Start(embeddedbroker.SCRAM("backend", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	p, s := beam.NewPipelineWithRoot()
	cmds := beam.Create(s, mqttio.Publication{Topic: "devices/pump-1/commands", Payload: []byte(`{"action":"stop"}`)})
	mqttio.Write(s, []string{broker.URL()}, cmds, mqttio.ProtocolVersion(5),
		mqttio.Auth("SCRAM-SHA-256", mqttio.SCRAMSHA256), mqttio.Credentials("backend", "s3cret"))
	res, err := beam.Run(context.Background(), "prism", p)
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range res.Metrics().Query(func(r metrics.SingleResult) bool { return r.Name() == "messages_published" }).Counters() {
		fmt.Println("published:", c.Result())
	}
	// Output:
	// published: 1
}
