package mqttio

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/reflectx"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// Option configures both Read and Write: how they connect to the broker
// (client id, credentials, TLS, timeouts, idle connections) and the QoS. It
// is a ReadOption and a WriteOption. An option given an invalid value makes
// Read or Write fail with an error that names the option.
type Option func(*connConfig) error

func (o Option) applyRead(c *readConfig) error   { return o(&c.connConfig) }
func (o Option) applyWrite(c *writeConfig) error { return o(&c.connConfig) }

// connConfig is what readers and writers share: the connection and the QoS.
// It travels inside the DoFns, so its fields are exported for serialization.
type connConfig struct {
	ClientID string
	Username string
	Password string
	// PasswordFunc, when set, looks the password up on the worker
	// (CredentialsFrom), given PasswordRef.
	PasswordFunc   *beam.EncodedFunc `json:",omitempty"`
	PasswordRef    string
	TLS            tlsConfig
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	QoS            byte
	SessionIdle    time.Duration
	// Protocol is the MQTT version: 3 (3.1.1) or 5 (see ProtocolVersion).
	Protocol byte
	// AuthMethod and AuthStep are MQTT 5 enhanced authentication (Auth).
	AuthMethod string
	AuthStep   *beam.EncodedFunc `json:",omitempty"`
}

// tlsConfig is the TLS part of a connConfig. The PEM blocks are read when the
// option is applied, so that workers which do not have the files (Dataflow)
// can still connect.
type tlsConfig struct {
	Enabled bool
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte
	// KeyFunc looks the client key up on the worker (TLSClientCertFrom),
	// given KeyRef.
	KeyFunc            *beam.EncodedFunc `json:",omitempty"`
	KeyRef             string
	ServerName         string
	InsecureSkipVerify bool
}

func defaultConnConfig() connConfig {
	return connConfig{
		KeepAlive:      60 * time.Second,
		ConnectTimeout: 10 * time.Second,
		QoS:            1,
		SessionIdle:    5 * time.Minute,
		Protocol:       3,
	}
}

// QoS sets the MQTT quality of service: for Read, the QoS of the
// subscriptions; for Write, the QoS of the publishes. 0, 1 (default) or 2.
func QoS(qos int) Option {
	return func(c *connConfig) error {
		if qos < 0 || qos > 2 {
			return optcheck.Errorf("QoS", "must be 0, 1 or 2, got %d", qos)
		}
		c.QoS = byte(qos)
		return nil
	}
}

// ClientID sets the MQTT client id, which must be stable across restarts for
// the broker to keep the reader's session. Read appends "-{reader index}" to it
// for each reader; Write appends a random suffix per worker. The default is
// derived from the topic filters ("mqttbeam-" and a hash), so two jobs that
// read the same filters from the same broker must set distinct client ids.
func ClientID(id string) Option {
	return func(c *connConfig) error {
		if id == "" {
			return optcheck.Errorf("ClientID", "must not be empty")
		}
		if len(id) > 200 {
			return optcheck.Errorf("ClientID", "must be at most 200 bytes, got %d", len(id))
		}
		if err := checkTopicChars(id); err != nil {
			return optcheck.Errorf("ClientID", "%v", err)
		}
		c.ClientID = id
		return nil
	}
}

// Credentials sets the user name and password sent to the broker. The
// password is never logged nor included in errors, but it travels inside the
// job's serialized DoFns: on Dataflow, use CredentialsFrom instead.
func Credentials(username, password string) Option {
	return func(c *connConfig) error {
		if username == "" {
			return optcheck.Errorf("Credentials", "user name must not be empty")
		}
		c.Username, c.Password = username, password
		return nil
	}
}

// CredentialsFrom authenticates as username with a password that each worker
// looks up when it connects: fn(ctx, ref) returns it, e.g. by reading the
// Secret Manager secret version ref. Only ref travels with the pipeline, so
// the password appears in no job parameter, graph or log, and a rotated
// secret is picked up on the next connection. fn must be a top-level function
// registered with register.Function2x2, so that workers can find it.
func CredentialsFrom(username string, fn func(ctx context.Context, ref string) (string, error), ref string) Option {
	return func(c *connConfig) error {
		if username == "" {
			return optcheck.Errorf("CredentialsFrom", "username must not be empty")
		}
		f, err := lookUpOption("CredentialsFrom", fn, ref)
		if err != nil {
			return err
		}
		c.Username, c.Password = username, ""
		c.PasswordFunc, c.PasswordRef = f, ref
		return nil
	}
}

// TLSCAFile trusts the certificate authorities in the PEM file when verifying
// the broker's certificate (instead of the system's roots) and turns TLS on.
func TLSCAFile(path string) Option {
	return func(c *connConfig) error {
		pem, err := readPEM("TLSCAFile", path)
		if err != nil {
			return err
		}
		c.TLS.Enabled, c.TLS.CAPEM = true, pem
		return nil
	}
}

// TLSClientCert presents the certificate and key in the PEM files to the
// broker (mutual TLS) and turns TLS on. The key travels inside the job's
// serialized DoFns: on Dataflow, use TLSClientCertFrom instead.
func TLSClientCert(certFile, keyFile string) Option {
	return func(c *connConfig) error {
		cert, err := readPEM("TLSClientCert", certFile)
		if err != nil {
			return err
		}
		key, err := readPEM("TLSClientCert", keyFile)
		if err != nil {
			return err
		}
		c.TLS.Enabled, c.TLS.CertPEM, c.TLS.KeyPEM = true, cert, key
		c.TLS.KeyFunc, c.TLS.KeyRef = nil, ""
		return nil
	}
}

// TLSClientCertFrom presents the certificate in the PEM file certFile to the
// broker (mutual TLS) with a private key that each worker looks up when it
// connects: fn(ctx, ref) returns the key in PEM, e.g. by reading the Secret
// Manager secret version ref. Only ref travels with the pipeline, so the key
// appears in no job parameter, graph, image or log, and a rotated key is
// picked up on the next connection. fn must be a top-level function
// registered with register.Function2x2, so that workers can find it. It
// turns TLS on.
func TLSClientCertFrom(certFile string, fn func(ctx context.Context, ref string) (string, error), ref string) Option {
	return func(c *connConfig) error {
		cert, err := readPEM("TLSClientCertFrom", certFile)
		if err != nil {
			return err
		}
		f, err := lookUpOption("TLSClientCertFrom", fn, ref)
		if err != nil {
			return err
		}
		c.TLS.Enabled, c.TLS.CertPEM, c.TLS.KeyPEM = true, cert, nil
		c.TLS.KeyFunc, c.TLS.KeyRef = f, ref
		return nil
	}
}

// TLSServerName sets the name the broker's certificate is checked against,
// when it differs from the host in the broker URL (e.g. behind a load
// balancer).
func TLSServerName(name string) Option {
	return func(c *connConfig) error {
		if name == "" {
			return optcheck.Errorf("TLSServerName", "must not be empty")
		}
		c.TLS.Enabled, c.TLS.ServerName = true, name
		return nil
	}
}

// TLSInsecureSkipVerify turns off the verification of the broker's
// certificate. Only for trying things out: anyone on the path can then read
// and change the traffic.
func TLSInsecureSkipVerify() Option {
	return func(c *connConfig) error {
		c.TLS.Enabled, c.TLS.InsecureSkipVerify = true, true
		return nil
	}
}

// KeepAlive sets the MQTT keep-alive interval (default 60s).
func KeepAlive(d time.Duration) Option {
	return optcheck.Positive("KeepAlive", d, func(c *connConfig) { c.KeepAlive = d })
}

// ConnectTimeout bounds each connection attempt (default 10s).
func ConnectTimeout(d time.Duration) Option {
	return optcheck.Positive("ConnectTimeout", d, func(c *connConfig) { c.ConnectTimeout = d })
}

// SessionIdle is how long an unused connection stays open in a worker's cache
// before it is closed (default 5m).
func SessionIdle(d time.Duration) Option {
	return optcheck.Positive("SessionIdle", d, func(c *connConfig) { c.SessionIdle = d })
}

// password is the password to connect with: Password, or what PasswordFunc
// returns for PasswordRef.
func (c *connConfig) password(ctx context.Context) (string, error) {
	if c.PasswordFunc == nil || c.PasswordFunc.Fn == nil {
		return c.Password, nil
	}
	pw, err := lookUp(ctx, "CredentialsFrom", c.PasswordFunc, c.PasswordRef)
	if err != nil {
		return "", fmt.Errorf("mqttio: looking up the password of %s: %w", c.Username, err)
	}
	return pw, nil
}

// clientKey is the client key to connect with: KeyPEM, or what KeyFunc
// returns for KeyRef.
func (t *tlsConfig) clientKey(ctx context.Context) ([]byte, error) {
	if t.KeyFunc == nil || t.KeyFunc.Fn == nil {
		return t.KeyPEM, nil
	}
	key, err := lookUp(ctx, "TLSClientCertFrom", t.KeyFunc, t.KeyRef)
	if err != nil {
		return nil, fmt.Errorf("mqttio: looking up the TLS client key %s: %w", t.KeyRef, err)
	}
	return []byte(key), nil
}

// lookUp calls f, the func(context.Context, string) (string, error) given to
// option, with ref.
func lookUp(ctx context.Context, option string, f *beam.EncodedFunc, ref string) (string, error) {
	want := reflect.TypeOf(func(context.Context, string) (string, error) { return "", nil })
	if f.Fn.Type() != want {
		return "", fmt.Errorf("%s function has type %v, want %v", option, f.Fn.Type(), want)
	}
	if direct, ok := f.Fn.(interface{ Interface() any }); ok {
		if fn, ok := direct.Interface().(func(context.Context, string) (string, error)); ok {
			return fn(ctx, ref)
		}
	}
	out := f.Fn.Call([]any{ctx, ref})
	v, _ := out[0].(string)
	err, _ := out[1].(error)
	return v, err
}

// lookUpOption checks the arguments of an option that looks a secret up with
// fn(ctx, ref) on the workers, and encodes fn.
func lookUpOption(option string, fn func(ctx context.Context, ref string) (string, error), ref string) (*beam.EncodedFunc, error) {
	switch {
	case fn == nil:
		return nil, optcheck.Errorf(option, "function must not be nil")
	case ref == "":
		return nil, optcheck.Errorf(option, "ref must not be empty")
	}
	return &beam.EncodedFunc{Fn: reflectx.MakeFunc(fn)}, nil
}

func readPEM(option, path string) ([]byte, error) {
	if path == "" {
		return nil, optcheck.Errorf(option, "file name must not be empty")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, optcheck.Errorf(option, "%v", err)
	}
	return b, nil
}
