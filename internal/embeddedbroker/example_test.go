package embeddedbroker_test

import (
	"fmt"
	"log"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
)

// Start a broker on a free loopback port, subscribe and publish through it.
func Example() {
	broker, err := embeddedbroker.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	await := func(tok paho.Token) {
		if !tok.WaitTimeout(10 * time.Second) {
			log.Fatal("timed out")
		}
		if err := tok.Error(); err != nil {
			log.Fatal(err)
		}
	}
	client := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("example"))
	await(client.Connect())
	defer client.Disconnect(0)

	received := make(chan paho.Message, 1)
	await(client.Subscribe("greetings/+", 1, func(_ paho.Client, m paho.Message) { received <- m }))
	await(client.Publish("greetings/world", 1, false, "hello"))

	select {
	case m := <-received:
		fmt.Printf("%s: %s\n", m.Topic(), m.Payload())
	case <-time.After(10 * time.Second):
		log.Fatal("no message")
	}
	// Output: greetings/world: hello
}
