package brokertest

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// RequireBrokersEnv names the environment variable that, set to "1", turns
// every missing broker (RabbitMQ, ejabberd, aedes, HAProxy and mosquitto)
// from a skipped test into a failure. CI sets it after installing them.
const RequireBrokersEnv = "MQTTBEAM_REQUIRE_BROKERS"

// NotInstalledError reports that a broker's software is missing.
type NotInstalledError struct {
	Broker  string // such as "rabbitmq-server"
	Install string // the command that installs it
}

func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("%s is not installed: %s", e.Broker, e.Install)
}

// required reports whether a missing broker fails tests: RequireBrokersEnv
// is "1", or, for mosquitto, RequireMosquittoEnv.
func required(broker string) bool {
	return os.Getenv(RequireBrokersEnv) == "1" || (broker == "mosquitto" && os.Getenv(RequireMosquittoEnv) == "1")
}

// SkipOrFail ends t because a broker could not be started: it skips t with
// the install command when err is a *NotInstalledError and the broker is not
// required (see RequireBrokersEnv), and fails it otherwise.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	var missing *NotInstalledError
	if errors.As(err, &missing) && !required(missing.Broker) {
		t.Skipf("brokertest: %v (set %s=1 to make this a failure)", err, RequireBrokersEnv)
	}
	t.Fatalf("brokertest: %v", err)
}
