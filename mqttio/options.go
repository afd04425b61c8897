package mqttio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/reflectx"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// Option configures Read or Write. Options that only make sense for one of
// them say so and are ignored by the other. An option given an invalid value
// makes Read or Write fail with an error that names the option.
type Option func(*config) error

// config holds every setting of a Read or Write. It travels inside the DoFns,
// so its fields are exported for serialization; users set them through Options.
type config struct {
	// Connection.
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

	// Read.
	Readers           int
	Group             string
	MaxRecords        int64
	MaxReadTime       time.Duration
	EventTime         *beam.EncodedFunc `json:",omitempty"`
	MaxOutOfOrderness time.Duration
	IdleWatermark     time.Duration
	WatermarkStep     time.Duration
	InflightWindow    int
	MaxBuffered       int
	MaxBundleSize     int
	MaxBundleTime     time.Duration
	SessionIdle       time.Duration

	// Write.
	Retain        bool
	TopicTemplate string
	MaxPending    int
	PublishTries  int
	PublishWait   time.Duration
}

// tlsConfig is the TLS part of a config. The PEM blocks are read when the
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

func defaultConfig() config {
	return config{
		KeepAlive:         60 * time.Second,
		ConnectTimeout:    10 * time.Second,
		QoS:               1,
		Readers:           1,
		MaxOutOfOrderness: 0,
		IdleWatermark:     time.Second,
		WatermarkStep:     time.Second,
		InflightWindow:    20,
		MaxBuffered:       1000,
		MaxBundleSize:     10000,
		MaxBundleTime:     500 * time.Millisecond,
		SessionIdle:       5 * time.Minute,
		MaxPending:        1000,
		PublishTries:      5,
		PublishWait:       30 * time.Second,
	}
}

func newConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			return cfg, errors.New("mqttio: nil Option")
		}
		if err := opt(&cfg); err != nil {
			return cfg, fmt.Errorf("mqttio: %w", err)
		}
	}
	return cfg, nil
}

// newSettings applies opts and checks the broker URLs, the first step of
// both Read and Write.
func newSettings(brokers []string, opts []Option) (config, []string, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return cfg, nil, err
	}
	bs, err := parseBrokers(brokers)
	return cfg, bs, err
}

// QoS sets the MQTT quality of service: for Read, the QoS of the
// subscriptions; for Write, the QoS of the publishes. 0, 1 (default) or 2.
func QoS(qos int) Option {
	return func(c *config) error {
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
	return func(c *config) error {
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
// job's serialized DoFns: on Dataflow, read it at start-up from a secret
// store rather than passing it as a plain job parameter.
func Credentials(username, password string) Option {
	return func(c *config) error {
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
	return func(c *config) error {
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

// password is the password to connect with: Password, or what PasswordFunc
// returns for PasswordRef.
func (c *config) password(ctx context.Context) (string, error) {
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

// TLSCAFile trusts the certificate authorities in the PEM file when verifying
// the broker's certificate (instead of the system's roots) and turns TLS on.
func TLSCAFile(path string) Option {
	return func(c *config) error {
		pem, err := readPEM("TLSCAFile", path)
		if err != nil {
			return err
		}
		c.TLS.Enabled, c.TLS.CAPEM = true, pem
		return nil
	}
}

// TLSClientCert presents the certificate and key in the PEM files to the
// broker (mutual TLS) and turns TLS on.
func TLSClientCert(certFile, keyFile string) Option {
	return func(c *config) error {
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
	return func(c *config) error {
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
	return func(c *config) error {
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
	return func(c *config) error {
		c.TLS.Enabled, c.TLS.InsecureSkipVerify = true, true
		return nil
	}
}

// KeepAlive sets the MQTT keep-alive interval (default 60s).
func KeepAlive(d time.Duration) Option {
	return optcheck.Positive("KeepAlive", d, func(c *config) { c.KeepAlive = d })
}

// ConnectTimeout bounds each connection attempt (default 10s).
func ConnectTimeout(d time.Duration) Option {
	return optcheck.Positive("ConnectTimeout", d, func(c *config) { c.ConnectTimeout = d })
}

// Readers starts n readers (Read only), each with its own client id. With n > 1
// they subscribe through shared subscriptions ($share/{group}/{filter}), so the
// broker balances the messages across them; with n = 1 (default) the
// subscription is plain.
func Readers(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1000 {
			return optcheck.Errorf("Readers", "must be between 1 and 1000, got %d", n)
		}
		c.Readers = n
		return nil
	}
}

// SharedGroup names the shared-subscription group used when Readers > 1
// (Read only). The default is the client id.
func SharedGroup(name string) Option {
	return func(c *config) error {
		if name == "" {
			return optcheck.Errorf("SharedGroup", "must not be empty")
		}
		if err := checkTopicLevel(name); err != nil {
			return optcheck.Errorf("SharedGroup", "%v", err)
		}
		c.Group = name
		return nil
	}
}

// MaxRecords makes the read bounded (Read only): each reader stops after
// emitting n messages.
func MaxRecords(n int64) Option {
	return func(c *config) error {
		if n < 1 {
			return optcheck.Errorf("MaxRecords", "must be at least 1, got %d", n)
		}
		c.MaxRecords = n
		return nil
	}
}

// MaxReadTime makes the read bounded (Read only): the readers stop this long
// after they started. Windows still open then fire.
func MaxReadTime(d time.Duration) Option {
	return optcheck.Positive("MaxReadTime", d, func(c *config) { c.MaxReadTime = d })
}

// EventTime takes each message's event time from fn (Read only) instead of the
// time it was received. fn returns false when the message carries no usable
// time, and the receive time is used. fn must be a top-level function
// registered with register.Function1x2, so that workers can find it.
func EventTime(fn func(Message) (time.Time, bool)) Option {
	return func(c *config) error {
		if fn == nil {
			return optcheck.Errorf("EventTime", "function must not be nil")
		}
		c.EventTime = &beam.EncodedFunc{Fn: reflectx.MakeFunc(fn)}
		return nil
	}
}

// MaxOutOfOrderness is how far behind the newest event time seen a message may
// be without being late (Read only): the watermark trails the newest event
// time by this bound. Default 0, which suits receive-time event times; set it
// when EventTime takes times from devices whose messages arrive out of order.
func MaxOutOfOrderness(d time.Duration) Option {
	return optcheck.NonNegative("MaxOutOfOrderness", d, func(c *config) { c.MaxOutOfOrderness = d })
}

// WatermarkStep makes the watermark advance in whole steps of d since the
// Unix epoch (Read only; default 1s; 0: every millisecond). Windows that end
// on a whole step close as early as with an exact watermark, while the
// stages downstream see one watermark change per step instead of one per
// bundle: prism (v2.77.0) rescans a GroupByKey's pending elements on every
// change, which made it the largest cost of a windowed job.
func WatermarkStep(d time.Duration) Option {
	return optcheck.NonNegative("WatermarkStep", d, func(c *config) { c.WatermarkStep = d })
}

// IdleWatermark is how long a reader waits without messages before it
// advances the watermark to the current time minus MaxOutOfOrderness (Read
// only; default 1s), so that windows close on quiet topics.
func IdleWatermark(d time.Duration) Option {
	return optcheck.Positive("IdleWatermark", d, func(c *config) { c.IdleWatermark = d })
}

// InflightWindow is the broker's limit on unacknowledged QoS 1 and 2 messages
// per client (Read only; default 20, as Mosquitto and VerneMQ). Once a reader
// has emitted this many unacknowledged messages and nothing more is ready, it
// checkpoints so that they get acknowledged. Set it to the broker's
// max_inflight_messages.
func InflightWindow(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 65535 {
			return optcheck.Errorf("InflightWindow", "must be between 1 and 65535, got %d", n)
		}
		c.InflightWindow = n
		return nil
	}
}

// MaxBuffered bounds the messages a reader holds that it has received but not
// yet emitted (Read only; default 1000). When the buffer is full the reader
// stops reading from its connection, and the broker holds the backlog.
func MaxBuffered(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return optcheck.Errorf("MaxBuffered", "must be at least 1, got %d", n)
		}
		c.MaxBuffered = n
		return nil
	}
}

// MaxBundle bounds how many messages (default 10000) and how long (default
// 500ms) a reader emits before it checkpoints (Read only). Smaller bundles
// lower latency; larger ones cost less per message.
func MaxBundle(records int, d time.Duration) Option {
	return func(c *config) error {
		if records < 1 {
			return optcheck.Errorf("MaxBundle", "records must be at least 1, got %d", records)
		}
		if d <= 0 {
			return optcheck.Errorf("MaxBundle", "duration must be positive, got %v", d)
		}
		c.MaxBundleSize, c.MaxBundleTime = records, d
		return nil
	}
}

// SessionIdle is how long an unused connection stays open in a worker's cache
// before it is closed (default 5m).
func SessionIdle(d time.Duration) Option {
	return optcheck.Positive("SessionIdle", d, func(c *config) { c.SessionIdle = d })
}

// Retain sets the retain flag on published messages (Write only).
func Retain(retain bool) Option {
	return func(c *config) error {
		c.Retain = retain
		return nil
	}
}

// TopicTemplate publishes each Publication to a topic built from tmpl (Write
// only), e.g. "devices/{device_id}/commands": every {name} is replaced with
// Publication.Fields[name]. A value that is missing, empty, or contains '/',
// '+', '#' or NUL sends the element to the error output instead.
func TopicTemplate(tmpl string) Option {
	return func(c *config) error {
		if _, err := parseTemplate(tmpl); err != nil {
			return optcheck.Errorf("TopicTemplate", "%v", err)
		}
		c.TopicTemplate = tmpl
		return nil
	}
}

// MaxPending bounds the publishes a writer has in flight before it waits for
// the broker's acknowledgements (Write only; default 1000).
func MaxPending(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 65535 {
			return optcheck.Errorf("MaxPending", "must be between 1 and 65535, got %d", n)
		}
		c.MaxPending = n
		return nil
	}
}

// PublishRetry sets how many times a publish is attempted (default 5) and how
// long each attempt waits for the broker (default 30s) before the bundle fails
// (Write only).
func PublishRetry(tries int, wait time.Duration) Option {
	return func(c *config) error {
		if tries < 1 {
			return optcheck.Errorf("PublishRetry", "tries must be at least 1, got %d", tries)
		}
		if wait <= 0 {
			return optcheck.Errorf("PublishRetry", "wait must be positive, got %v", wait)
		}
		c.PublishTries, c.PublishWait = tries, wait
		return nil
	}
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

// eventTimeFunc returns the configured event-time function, or nil.
func (c *config) eventTimeFunc() (func(Message) (time.Time, bool), error) {
	if c.EventTime == nil || c.EventTime.Fn == nil {
		return nil, nil
	}
	f := c.EventTime.Fn
	want := reflect.TypeOf(func(Message) (time.Time, bool) { return time.Time{}, false })
	if f.Type() != want {
		return nil, fmt.Errorf("mqttio: EventTime function has type %v, want %v", f.Type(), want)
	}
	if direct, ok := f.(interface{ Interface() any }); ok {
		if fn, ok := direct.Interface().(func(Message) (time.Time, bool)); ok {
			return fn, nil
		}
	}
	call := reflectx.ToFunc1x2(f)
	return func(m Message) (time.Time, bool) {
		t, ok := call.Call1x2(m)
		return t.(time.Time), ok.(bool)
	}, nil
}
