package pubsubio

import (
	"net"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// Option configures both Read and Write: how they reach Pub/Sub. It is a
// ReadOption and a WriteOption. An option given an invalid value makes Read
// or Write fail with an error that names the option.
type Option func(*clientConfig) error

func (o Option) applyRead(c *readConfig) error   { return o(&c.clientConfig) }
func (o Option) applyWrite(c *writeConfig) error { return o(&c.clientConfig) }

// clientConfig is what readers and writers share. It travels inside the
// DoFns, so its fields are exported for serialization.
type clientConfig struct {
	// Endpoint, when set, is a host:port reached over plaintext gRPC without
	// credentials (pstest, the Pub/Sub emulator).
	Endpoint string
}

// Endpoint sends every request to hostPort over plaintext gRPC without
// credentials, for pstest or the Pub/Sub emulator in tests and local demos.
// Never point it at a server across a network you do not trust: nothing is
// encrypted. Without it, the clients reach Google Cloud over TLS with the
// application default credentials (PUBSUB_EMULATOR_HOST, honoured by the
// client library, works too).
func Endpoint(hostPort string) Option {
	return func(c *clientConfig) error {
		host, port, err := net.SplitHostPort(hostPort)
		if err != nil || host == "" || port == "" {
			return optcheck.Errorf("Endpoint", "want host:port, got %q", hostPort)
		}
		c.Endpoint = hostPort
		return nil
	}
}
