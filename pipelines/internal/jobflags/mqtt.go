package jobflags

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/resname"
	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/pipelines/internal/secrets"
)

// Embedded is the --broker value that runs an in-process broker.
const Embedded = "embedded"

// MQTT holds the flags of a connection to a broker cluster.
type MQTT struct {
	Brokers        List
	ClientID       string
	Username       string
	Password       string
	PasswordSecret string
	TLSCA          string
	TLSCert        string
	TLSKey         string
	TLSKeySecret   string
	TLSServerName  string
	QoS            int
	InflightWindow int
	Version        int
	SessionExpiry  time.Duration

	allowEmbedded bool
	fs            *flag.FlagSet
}

// Register defines the connection flags on fs. With allowEmbedded, --broker
// defaults to "embedded" (an in-process broker for local runs); otherwise it
// is required.
func (m *MQTT) Register(fs *flag.FlagSet, clientID string, allowEmbedded bool) {
	m.allowEmbedded = allowEmbedded
	var def []string
	usage := "Comma-separated broker URLs of one cluster, e.g. ssl://broker-1:8883,ssl://broker-2:8883 (tcp, ssl, ws, wss)"
	if allowEmbedded {
		def = []string{Embedded}
		usage += `, or "embedded": an in-process broker with simulated devices (local runners only)` + RequiredOnDataflow
	} else {
		usage += Required
	}
	ListVar(fs, &m.Brokers, "broker", def, usage)
	fs.StringVar(&m.ClientID, "client_id", clientID, "MQTT client id; readers append -0, -1, ... Keep it stable across restarts: the broker keeps unacknowledged messages under it")
	fs.StringVar(&m.Username, "username", "", "MQTT username")
	fs.StringVar(&m.Password, "password", "", "MQTT password, for local runs; on Dataflow use --password_secret")
	fs.StringVar(&m.PasswordSecret, "password_secret", "", "Secret Manager secret version holding the MQTT password: projects/P/secrets/S/versions/V")
	fs.StringVar(&m.TLSCA, "tls_ca", "", "PEM file of the CA that signed the broker's certificate (default: the system roots)")
	fs.StringVar(&m.TLSCert, "tls_cert", "", "PEM client certificate for mutual TLS (with --tls_key or --tls_key_secret)")
	fs.StringVar(&m.TLSKey, "tls_key", "", "PEM private key file of --tls_cert, for local runs; on Dataflow use --tls_key_secret")
	fs.StringVar(&m.TLSKeySecret, "tls_key_secret", "", "Secret Manager secret version holding the PEM private key of --tls_cert: projects/P/secrets/S/versions/V")
	fs.StringVar(&m.TLSServerName, "tls_server_name", "", "Name to verify the broker's certificate against, when it differs from the URL's host")
	fs.IntVar(&m.QoS, "qos", 1, "MQTT QoS: 0 (at most once), 1 (at least once) or 2")
	fs.IntVar(&m.InflightWindow, "inflight_window", 0, "Unacknowledged QoS 1/2 messages a reader holds before it checkpoints: with --mqtt_version=3 match the broker's max_inflight_messages (0: 20); "+
		"with 5 the reader announces it to the broker (0: the broker's Receive Maximum, announcing 1000)")
	fs.IntVar(&m.Version, "mqtt_version", 3, "MQTT version: 3 (3.1.1) or 5")
	fs.DurationVar(&m.SessionExpiry, "session_expiry", 24*time.Hour, "With --mqtt_version=5: how long the broker keeps a reader's session (and its unacknowledged and new messages) while the job is away")
	m.fs = fs
}

// IsEmbedded reports whether --broker asks for the in-process broker.
func (m *MQTT) IsEmbedded() bool {
	return len(m.Brokers) == 1 && m.Brokers[0] == Embedded
}

// Validate checks the connection flags; local says whether the pipeline runs
// on a local runner.
func (m *MQTT) Validate(local bool) error {
	var errs []error
	switch {
	case len(m.Brokers) == 0:
		errs = append(errs, Errorf("broker", "is required: broker URLs such as ssl://broker:8883"))
	case m.IsEmbedded():
		if !m.allowEmbedded {
			errs = append(errs, Errorf("broker", "embedded is not available in this pipeline; give broker URLs"))
		} else if !local {
			errs = append(errs, Errorf("broker", "embedded runs only on local runners (prism, direct); give the brokers' URLs for Dataflow"))
		}
	default:
		if err := mqttio.ValidateBrokers(m.Brokers); err != nil {
			errs = append(errs, Errorf("broker", "%v", err))
		}
	}
	if m.QoS < 0 || m.QoS > 2 {
		errs = append(errs, Errorf("qos", "%d is not 0, 1 or 2", m.QoS))
	}
	if m.InflightWindow < 0 || m.InflightWindow > 65535 {
		errs = append(errs, Errorf("inflight_window", "%d is not from 0 to 65535", m.InflightWindow))
	}
	errs = append(errs, m.validateVersion())
	if m.ClientID == "" {
		errs = append(errs, Errorf("client_id", "is empty"))
	}
	if m.Password != "" && !local {
		errs = append(errs, Errorf("password", "is for local runs: on Dataflow it would travel inside the job graph; "+
			"store it in Secret Manager and give --password_secret=projects/P/secrets/S/versions/V"))
	}
	if m.Password != "" && m.PasswordSecret != "" {
		errs = append(errs, Errorf("password_secret", "give --password or --password_secret, not both"))
	}
	if (m.Password != "" || m.PasswordSecret != "") && m.Username == "" {
		errs = append(errs, Errorf("username", "is required with a password"))
	}
	if m.PasswordSecret != "" && !resname.SecretVersionRE.MatchString(m.PasswordSecret) {
		errs = append(errs, Errorf("password_secret", "%q is not a secret version: projects/PROJECT/secrets/SECRET/versions/VERSION", m.PasswordSecret))
	}
	if m.TLSKey != "" && !local {
		errs = append(errs, Errorf("tls_key", "is for local runs: on Dataflow the key would travel inside the job graph; "+
			"store it in Secret Manager and give --tls_key_secret=projects/P/secrets/S/versions/V"))
	}
	switch {
	case m.TLSKey != "" && m.TLSKeySecret != "":
		errs = append(errs, Errorf("tls_key_secret", "give --tls_key or --tls_key_secret, not both"))
	case m.TLSCert != "" && m.TLSKey == "" && m.TLSKeySecret == "":
		errs = append(errs, Errorf("tls_cert", "needs its private key: --tls_key (local runs) or --tls_key_secret"))
	case m.TLSCert == "" && (m.TLSKey != "" || m.TLSKeySecret != ""):
		errs = append(errs, Errorf("tls_cert", "is required with a client key (--tls_key or --tls_key_secret)"))
	}
	if m.TLSKeySecret != "" && !resname.SecretVersionRE.MatchString(m.TLSKeySecret) {
		errs = append(errs, Errorf("tls_key_secret", "%q is not a secret version: projects/PROJECT/secrets/SECRET/versions/VERSION", m.TLSKeySecret))
	}
	// The PEM files are read when the pipeline is built and travel with it,
	// so they must exist where it is built, whatever the runner.
	for _, f := range []struct{ name, path string }{{"tls_ca", m.TLSCA}, {"tls_cert", m.TLSCert}, {"tls_key", m.TLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, Errorf(f.name, "%v", err))
		}
	}
	return Join(errs...)
}

// validateVersion checks --mqtt_version and the flags that need MQTT 5.
func (m *MQTT) validateVersion() error {
	switch {
	case m.Version != 3 && m.Version != 5:
		return Errorf("mqtt_version", "%d is not 3 (MQTT 3.1.1) or 5", m.Version)
	case m.Version == 3 && m.isSet("session_expiry"):
		return Errorf("session_expiry", "needs --mqtt_version=5 (MQTT 3.1.1 brokers expire sessions by their own settings, e.g. Mosquitto persistent_client_expiration)")
	case m.Version == 5 && m.SessionExpiry < time.Second:
		return Errorf("session_expiry", "%v is less than a second", m.SessionExpiry)
	}
	return nil
}

// isSet reports whether the flag name was given on the command line.
func (m *MQTT) isSet(name string) bool {
	set := false
	if m.fs != nil {
		m.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	}
	return set
}

// ReadOptions are the mqttio.Read options of the flags, then extra. With
// --password_secret and --tls_key_secret, the workers read the password and
// the client key from Secret Manager when they connect; they never travel
// with the job.
func (m *MQTT) ReadOptions(extra ...mqttio.ReadOption) []mqttio.ReadOption {
	var opts []mqttio.ReadOption
	if m.InflightWindow > 0 {
		opts = append(opts, mqttio.InflightWindow(m.InflightWindow))
	}
	if m.Version == 5 {
		opts = append(opts, mqttio.SessionExpiry(m.SessionExpiry))
	}
	for _, o := range m.connOptions() {
		opts = append(opts, o)
	}
	return append(opts, extra...)
}

// WriteOptions are the mqttio.Write options of the flags, then extra; see
// ReadOptions.
func (m *MQTT) WriteOptions(extra ...mqttio.WriteOption) []mqttio.WriteOption {
	var opts []mqttio.WriteOption
	for _, o := range m.connOptions() {
		opts = append(opts, o)
	}
	return append(opts, extra...)
}

// connOptions are the options of the connection, for Read and Write alike.
func (m *MQTT) connOptions() []mqttio.Option {
	opts := []mqttio.Option{mqttio.QoS(m.QoS), mqttio.ClientID(m.ClientID), mqttio.ProtocolVersion(m.Version)}
	switch {
	case m.PasswordSecret != "":
		opts = append(opts, mqttio.CredentialsFrom(m.Username, secrets.Access, m.PasswordSecret))
	case m.Username != "":
		opts = append(opts, mqttio.Credentials(m.Username, m.Password))
	}
	if m.TLSCA != "" {
		opts = append(opts, mqttio.TLSCAFile(m.TLSCA))
	}
	switch {
	case m.TLSKeySecret != "":
		opts = append(opts, mqttio.TLSClientCertFrom(m.TLSCert, secrets.Access, m.TLSKeySecret))
	case m.TLSCert != "":
		opts = append(opts, mqttio.TLSClientCert(m.TLSCert, m.TLSKey))
	}
	if m.TLSServerName != "" {
		opts = append(opts, mqttio.TLSServerName(m.TLSServerName))
	}
	return opts
}

// String describes the connection without its secrets, for logs.
func (m *MQTT) String() string {
	auth := "no auth"
	if m.Username != "" {
		auth = "user " + m.Username
	}
	return fmt.Sprintf("brokers %v, MQTT %s, client id %s, QoS %d, %s", m.Brokers, map[int]string{3: "3.1.1", 5: "5"}[m.Version], m.ClientID, m.QoS, auth)
}
