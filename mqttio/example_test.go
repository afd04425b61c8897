package mqttio_test

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

func printMessage(m mqttio.Message) {
	fmt.Printf("%s %s (QoS %d)\n", m.Topic, m.Payload, m.QoS)
}

func init() { register.Function1x0(printMessage) }

// Read three telemetry messages from a broker and print them. A real job
// leaves out MaxRecords and runs until it is stopped.
func ExampleRead() {
	// A broker, and two devices that publish once the reader has subscribed.
	subscribed := make(chan struct{}, 1)
	broker, err := embeddedbroker.Start(embeddedbroker.OnSubscribe(func(string, []string) { subscribed <- struct{}{} }))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	go publishTelemetry(broker.URL(), subscribed)

	p, s := beam.NewPipelineWithRoot()
	msgs := mqttio.Read(s, []string{broker.URL()}, []string{"devices/+/telemetry"},
		mqttio.ClientID("example-reader"), mqttio.QoS(1), mqttio.MaxRecords(3))
	beam.ParDo0(s, printMessage, msgs)
	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		log.Fatal(err)
	}
	// Unordered output:
	// devices/d1/telemetry {"temperature":21.5} (QoS 1)
	// devices/d2/telemetry {"temperature":19.0} (QoS 1)
	// devices/d1/telemetry {"temperature":21.7} (QoS 1)
}

func publishTelemetry(url string, subscribed <-chan struct{}) {
	<-subscribed
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("example-devices"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		log.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	for _, m := range [][2]string{
		{"devices/d1/telemetry", `{"temperature":21.5}`},
		{"devices/d2/telemetry", `{"temperature":19.0}`},
		{"devices/d1/telemetry", `{"temperature":21.7}`},
	} {
		c.Publish(m[0], 1, false, m[1]).Wait()
	}
}
