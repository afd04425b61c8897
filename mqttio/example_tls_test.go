package mqttio_test

import (
	"context"
	"log"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/embeddedbroker"
	"github.com/mqttbeam/mqttbeam/mqttio"
)

// lookUpKey stands in for a secret store such as Secret Manager (the
// pipelines use pipelines/internal/secrets.Access): it returns the PEM private key
// that ref names, here a file. Workers find it because it is registered.
func lookUpKey(_ context.Context, ref string) (string, error) {
	b, err := os.ReadFile(ref)
	return string(b), err
}

func init() { register.Function2x2(lookUpKey) }

// Read from a broker that requires mutual TLS, with a client key that each
// worker looks up when it connects: only the key's reference travels with
// the pipeline.
func ExampleTLSClientCertFrom() {
	dir, err := os.MkdirTemp("", "mqttio-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	c, err := certs.GenerateCerts(dir) // a CA, a server and a client certificate
	if err != nil {
		log.Fatal(err)
	}
	subscribed := make(chan struct{}, 1)
	broker, err := embeddedbroker.Start(embeddedbroker.TLS(c.ServerCert, c.ServerKey), embeddedbroker.ClientCA(c.CAFile),
		embeddedbroker.OnSubscribe(func(string, []string) { subscribed <- struct{}{} }))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	go publishTelemetry(broker.URL(), subscribed) // devices on the broker's plain listener

	p, s := beam.NewPipelineWithRoot()
	msgs := mqttio.Read(s, []string{broker.TLSURL()}, []string{"devices/+/telemetry"},
		mqttio.ClientID("example-mtls-reader"), mqttio.QoS(1), mqttio.MaxRecords(3),
		mqttio.TLSCAFile(c.CAFile),
		mqttio.TLSClientCertFrom(c.ClientCert, lookUpKey, c.ClientKey))
	beam.ParDo0(s, printMessage, msgs)
	if _, err := beam.Run(context.Background(), "prism", p); err != nil {
		log.Fatal(err)
	}
	// Unordered output:
	// devices/d1/telemetry {"temperature":21.5} (QoS 1)
	// devices/d2/telemetry {"temperature":19.0} (QoS 1)
	// devices/d1/telemetry {"temperature":21.7} (QoS 1)
}
