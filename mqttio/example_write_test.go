package mqttio_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

func init() { register.Function1x0(printRejected) }

// printRejected reports a command Write refused to publish.
func printRejected(e mqttio.PublishError) {
	fmt.Printf("rejected %q: %s\n", e.Publication.Payload, e.Reason)
}

// Write sends commands to devices, filling the topic from each element. The
// second command names a device id that would inject a topic level, so it
// comes out of the error output instead of being published.
func ExampleWrite() {
	broker, err := embeddedbroker.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	// A device listening for its commands.
	commands := make(chan mqtt.Message, 1)
	device := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("pump-1"))
	if tok := device.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		log.Fatalf("device: connect: %v", tok.Error())
	}
	defer device.Disconnect(0)
	tok := device.Subscribe("devices/pump-1/commands", 1, func(_ mqtt.Client, m mqtt.Message) { commands <- m })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		log.Fatalf("device: subscribe: %v", tok.Error())
	}

	p, s := beam.NewPipelineWithRoot()
	cmds := beam.CreateList(s, []mqttio.Publication{
		{Fields: map[string]string{"device": "pump-1"}, Payload: []byte("start")},
		{Fields: map[string]string{"device": "pump/1"}, Payload: []byte("stop")},
	})
	rejected := mqttio.Write(s, []string{broker.URL()}, cmds,
		mqttio.TopicTemplate("devices/{device}/commands"),
		mqttio.QoS(1))
	beam.ParDo0(s, printRejected, rejected)
	if err := beamx.Run(context.Background(), p); err != nil {
		log.Fatal(err)
	}

	select {
	case m := <-commands:
		fmt.Printf("%s received %q\n", m.Topic(), m.Payload())
	case <-time.After(10 * time.Second):
		log.Fatal("the device received no command")
	}
	// Output:
	// rejected "stop": invalid topic: topic template field "device": value "pump/1" contains '/', '+' or '#'
	// devices/pump-1/commands received "start"
}
