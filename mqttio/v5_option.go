package mqttio

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/reflectx"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// ProtocolVersion chooses the MQTT version Read and Write speak: 3 (MQTT
// 3.1.1, the default, through paho.mqtt.golang) or 5 (through paho.golang).
//
// With MQTT 5 everything mqttio promises holds as with 3.1.1, and: a reader
// announces its inflight window to the broker and, without InflightWindow,
// checkpoints on the broker's Receive Maximum from its CONNACK (Mosquitto
// announces its max_inflight_messages there); a writer keeps no more
// publishes unacknowledged than the broker's Receive Maximum; a reader's
// session expires SessionExpiry after it left (default 24h); Message and
// Publication carry user properties, content type, response topic,
// correlation data and message expiry; refused connections, subscriptions
// and publishes name the broker's reason code, and a refused publish goes to
// Write's error output; Auth runs enhanced authentication; and the
// keep-alive and maximum packet size the broker announces are kept.
func ProtocolVersion(v int) Option {
	return func(c *connConfig) error {
		if v != 3 && v != 5 {
			return optcheck.Errorf("ProtocolVersion", "must be 3 (MQTT 3.1.1) or 5, got %d", v)
		}
		c.Protocol = byte(v)
		return nil
	}
}

// Auth authenticates with MQTT 5 enhanced authentication (AUTH packets, a
// challenge and response): method names the method (e.g. "SCRAM-SHA-256")
// and step computes the client's side, one step per call (see AuthStep and
// AuthExchange; SCRAMSHA256 is SCRAM-SHA-256's). The user name of
// Credentials or CredentialsFrom goes in the CONNECT packet; the password
// does not: step gets it, to prove that it knows it. It needs
// ProtocolVersion(5).
func Auth(method string, step AuthStep) Option {
	return func(c *connConfig) error {
		switch {
		case method == "":
			return optcheck.Errorf("Auth", "method must not be empty")
		case step == nil:
			return optcheck.Errorf("Auth", "step function must not be nil")
		}
		c.AuthMethod, c.AuthStep = method, &beam.EncodedFunc{Fn: reflectx.MakeFunc(step)}
		return nil
	}
}

// SessionExpiry is how long the broker keeps a reader's session after the
// reader disconnected or was lost (default 24h; whole seconds, at least 1s,
// at most about 136 years, which MQTT reads as never). A reader back within
// it gets every message it had not acknowledged and those published
// meanwhile; a job gone for good leaves no session filling the broker
// beyond it. It needs ProtocolVersion(5): MQTT 3.1.1 brokers expire absent
// sessions by their own settings (Mosquitto persistent_client_expiration).
func SessionExpiry(d time.Duration) ReadOption {
	return readOption(func(c *readConfig) error {
		if d < time.Second {
			return optcheck.Errorf("SessionExpiry", "must be at least 1s, got %v", d)
		}
		c.SessionExpiry = d
		return nil
	})
}

// defaultSessionExpiry is the session expiry of readers without
// SessionExpiry.
const defaultSessionExpiry = 24 * time.Hour

// checkVersion refuses the MQTT 5 options with MQTT 3.1.1.
func (c *connConfig) checkVersion() error {
	if c.Protocol != 5 && c.AuthMethod != "" {
		return fmt.Errorf("mqttio: %w", optcheck.Errorf("Auth", "enhanced authentication needs ProtocolVersion(5)"))
	}
	return nil
}

// checkVersion refuses the MQTT 5 options with MQTT 3.1.1.
func (c *readConfig) checkVersion() error {
	if c.Protocol != 5 && c.SessionExpiry > 0 {
		return fmt.Errorf("mqttio: %w", optcheck.Errorf("SessionExpiry", "needs ProtocolVersion(5); MQTT 3.1.1 brokers expire sessions by their own settings"))
	}
	return c.connConfig.checkVersion()
}

// sessionExpiry is the Session Expiry Interval of the reader's CONNECT.
func (c *readConfig) sessionExpiry() uint32 {
	d := c.SessionExpiry
	if d == 0 {
		d = defaultSessionExpiry
	}
	return uint32(min((d+time.Second-1)/time.Second, math.MaxUint32))
}

// receiveMaximum is the Receive Maximum an MQTT 5 reader announces: its
// InflightWindow, or MaxBuffered, which bounds the messages the broker sends
// ahead of the reader's acknowledgements, and so its memory.
func (c *readConfig) receiveMaximum() uint16 {
	n := c.InflightWindow
	if n == 0 {
		n = c.MaxBuffered
	}
	return uint16(min(n, math.MaxUint16))
}

// window is the inflight window of a connection with limits l: for MQTT 5
// the Receive Maximum the reader announced, or the broker's from its
// CONNACK when lower; for MQTT 3.1.1 the InflightWindow option (default 20).
func (c *readConfig) window(l connLimits) int {
	if c.Protocol != 5 {
		if c.InflightWindow > 0 {
			return c.InflightWindow
		}
		return 20
	}
	return int(min(c.receiveMaximum(), l.receiveMaximum))
}

// authStep is the step function of Auth.
func (c *connConfig) authStep() (AuthStep, error) {
	f := c.AuthStep.Fn
	if f == nil {
		return nil, fmt.Errorf("mqttio: Auth step function is missing")
	}
	want := reflect.TypeOf(AuthStep(nil))
	if direct, ok := f.(interface{ Interface() any }); ok {
		switch fn := direct.Interface().(type) {
		case AuthStep:
			return fn, nil
		case func(context.Context, *AuthExchange) ([]byte, error):
			return fn, nil
		}
	}
	if f.Type().ConvertibleTo(want) {
		return func(ctx context.Context, x *AuthExchange) ([]byte, error) {
			out := f.Call([]any{ctx, x})
			data, _ := out[0].([]byte)
			err, _ := out[1].(error)
			return data, err
		}, nil
	}
	return nil, fmt.Errorf("mqttio: Auth step function has type %v, want %v", f.Type(), want)
}

// fits checks that the broker can take what the writer publishes, as its
// CONNACK says (MQTT 5): the QoS and the retain flag.
func (c *writeConfig) fits(l connLimits) error {
	if c.QoS > l.maxQoS {
		return fmt.Errorf("the broker supports QoS up to %d (its CONNACK says so): use QoS(%d)", l.maxQoS, l.maxQoS)
	}
	if c.Retain && l.noRetain {
		return fmt.Errorf("the broker does not support retained messages (its CONNACK says so): drop Retain(true)")
	}
	return nil
}
