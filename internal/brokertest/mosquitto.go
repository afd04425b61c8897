package brokertest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/ports"
)

const (
	// RequireMosquittoEnv names the environment variable that, set to "1",
	// turns a missing mosquitto binary from a skipped test into a failure.
	RequireMosquittoEnv = "MQTTBEAM_REQUIRE_MOSQUITTO"

	// mosquittoInstall installs mosquitto.
	mosquittoInstall = "apt-get install -y mosquitto mosquitto-clients"

	// readyTimeout bounds how long mosquitto may take to accept connections.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds how long Stop waits after SIGTERM before SIGKILL.
	stopTimeout = 5 * time.Second
	// startAttempts is how often Mosquitto tries fresh ports when another
	// process took a port between choosing and binding it.
	startAttempts = 3
)

// mosquittoConfig collects the settings made by MosquittoOptions.
type mosquittoConfig struct {
	certs             *certs.Certs
	requireClientCert bool
	user, password    string
	maxInflight       int // -1: mosquitto's default (20)
	maxQueued         int
	websocket         bool
	bridges           []Bridge
	more              moreConfig // mosquitto_config.go
}

// MosquittoOption configures the broker started by Mosquitto. It returns an
// error, naming itself, when given an invalid value.
type MosquittoOption func(*mosquittoConfig) error

// MosquittoTLS adds a TLS listener on a free port presenting c.ServerCert and
// trusting c.CAFile for client certificates.
func MosquittoTLS(c certs.Certs) MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		for _, f := range []string{c.CAFile, c.ServerCert, c.ServerKey} {
			if strings.ContainsAny(f, "\r\n") {
				return fmt.Errorf("MosquittoTLS: path %q contains a line break", f)
			}
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("MosquittoTLS: %w", err)
			}
		}
		cfg.certs = &c
		return nil
	}
}

// MosquittoRequireClientCert makes the TLS listener require a client
// certificate signed by the CA of MosquittoTLS (require_certificate true).
func MosquittoRequireClientCert() MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		cfg.requireClientCert = true
		return nil
	}
}

// MosquittoAuth allows only clients with this user name and password
// (allow_anonymous false and a password file written with mosquitto_passwd).
func MosquittoAuth(user, password string) MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		if user == "" || strings.ContainsAny(user, ":\n") {
			return fmt.Errorf("MosquittoAuth(%q): user name must be non-empty without ':' or newlines", user)
		}
		if password == "" {
			return errors.New("MosquittoAuth: password must not be empty")
		}
		cfg.user, cfg.password = user, password
		return nil
	}
}

// MosquittoMaxInflight sets max_inflight_messages, the number of QoS 1/2
// messages mosquitto sends to one client without acknowledgement before it
// queues further ones. 0 means no limit; without the option mosquitto's
// default of 20 applies.
//
// mosquitto 2.0.11 holds an MQTT 3.1.1 client to this window only until its
// first PUBACK: the first burst is exactly n messages, but afterwards one
// PUBACK can release up to n queued messages, so a client that acknowledges
// slowly can have far more than n unacknowledged (measured: with n=5, 32
// after seven acks; n=1 does stay strict). Queued messages are neither
// dropped (see MosquittoMaxQueued) nor reordered.
func MosquittoMaxInflight(n int) MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		if n < 0 || n > 65535 {
			return fmt.Errorf("MosquittoMaxInflight(%d): must be from 0 to 65535", n)
		}
		cfg.maxInflight = n
		return nil
	}
}

// MosquittoMaxQueued sets max_queued_messages, the number of QoS 1/2
// messages mosquitto queues per client beyond those in flight (including
// while a persistent client is away); mosquitto drops messages above it.
// The default here is 0, no limit, so that no queued message is lost
// (mosquitto's own default is 1000).
func MosquittoMaxQueued(n int) MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		if n < 0 {
			return fmt.Errorf("MosquittoMaxQueued(%d): must not be negative", n)
		}
		cfg.maxQueued = n
		return nil
	}
}

// MosquittoWebsocket adds an MQTT-over-websocket listener on a free port.
// mosquitto 2.0.11 binds websocket listeners to all interfaces, whatever
// address the configuration names.
func MosquittoWebsocket() MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		cfg.websocket = true
		return nil
	}
}

// Bridge describes a bridge from a Mosquitto broker to another broker (an
// edge broker forwarding to a cloud cluster): one "connection" section of
// mosquitto's configuration.
type Bridge struct {
	// Name names the connection; it is also the bridge's client id on the
	// remote broker, with a persistent session (cleansession false).
	Name string
	// Address is the remote broker's "host:port".
	Address string
	// CAFile, when not empty, makes the bridge connect over TLS, trusting
	// only this authority and verifying the address's host.
	CAFile string
	// Topics are mosquitto "topic" patterns: "PATTERN out|in|both QOS", e.g.
	// "devices/+/telemetry/# out 1" (local to remote) and
	// "devices/+/commands in 1" (remote to local).
	Topics []string
}

// MosquittoBridge adds a bridge to the broker's configuration. The bridge
// speaks MQTT 3.1.1 without mosquitto's private bridge flag (try_private
// false), which brokers other than mosquitto refuse, and retries its
// connection every second or two.
func MosquittoBridge(b Bridge) MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		if b.Name == "" || strings.ContainsAny(b.Name, " \r\n") {
			return fmt.Errorf("MosquittoBridge: name %q must be non-empty without spaces or line breaks", b.Name)
		}
		if _, _, err := net.SplitHostPort(b.Address); err != nil {
			return fmt.Errorf("MosquittoBridge(%s): address: %w", b.Name, err)
		}
		if len(b.Topics) == 0 {
			return fmt.Errorf("MosquittoBridge(%s): no topics", b.Name)
		}
		for _, v := range append([]string{b.CAFile}, b.Topics...) {
			if strings.ContainsAny(v, "\r\n") {
				return fmt.Errorf("MosquittoBridge(%s): %q contains a line break", b.Name, v)
			}
		}
		cfg.bridges = append(cfg.bridges, b)
		return nil
	}
}

// config returns b's section of mosquitto's configuration.
func (b Bridge) config() string {
	var conf strings.Builder
	fmt.Fprintf(&conf, "\nconnection %s\naddress %s\nclientid %s\n", b.Name, b.Address, b.Name)
	conf.WriteString("bridge_protocol_version mqttv311\ntry_private false\ncleansession false\n")
	conf.WriteString("notifications false\nrestart_timeout 1 2\nkeepalive_interval 10\n")
	if b.CAFile != "" {
		fmt.Fprintf(&conf, "bridge_cafile %s\nbridge_insecure false\n", b.CAFile)
	}
	for _, t := range b.Topics {
		fmt.Fprintf(&conf, "topic %s\n", t)
	}
	return conf.String()
}

// MosquittoBroker is a mosquitto process started by Mosquitto or
// StartMosquitto. (The type cannot share the function's name in Go.)
// Sessions live in memory only (persistence false), so Restart discards them.
type MosquittoBroker struct {
	tb       testing.TB // nil when started by StartMosquitto
	confFile string
	url      string
	tlsURL   string
	wsURL    string
	d        *daemon
}

// Mosquitto starts the mosquitto binary with a configuration generated in
// t.TempDir(): a plain listener on a free 127.0.0.1 port plus the listeners
// added by opts, anonymous access unless MosquittoAuth is given, no
// persistence and no queue limit. It returns once every listener accepts
// connections and stops the broker when the test ends. mosquitto's log is
// shown with t.Log only if the test fails.
//
// Without the mosquitto binary the test is skipped, or fails if the
// environment variable MQTTBEAM_REQUIRE_MOSQUITTO (or
// MQTTBEAM_REQUIRE_BROKERS) is "1".
func Mosquitto(t testing.TB, opts ...MosquittoOption) *MosquittoBroker {
	t.Helper()
	m, err := StartMosquitto(t.TempDir(), opts...)
	if err != nil {
		SkipOrFail(t, err)
	}
	m.tb = t
	// Registered first so that it runs last, after Stop has logged shutdown.
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(m.Describe())
		}
	})
	t.Cleanup(m.Stop)
	return m
}

// StartMosquitto is Mosquitto for programs: it writes its files into dir
// (which must exist) and returns an error instead of failing a test (a
// *NotInstalledError without the binary). The caller stops the broker with
// Close.
func StartMosquitto(dir string, opts ...MosquittoOption) (*MosquittoBroker, error) {
	bin := lookBin("mosquitto", "/usr/sbin/mosquitto")
	if bin == "" {
		return nil, &NotInstalledError{Broker: "mosquitto", Install: mosquittoInstall}
	}
	cfg := mosquittoConfig{maxInflight: -1}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("brokertest: mosquitto option %d is nil", i)
		}
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("brokertest: %w", err)
		}
	}
	if cfg.requireClientCert && cfg.certs == nil {
		return nil, errors.New("brokertest: MosquittoRequireClientCert needs MosquittoTLS")
	}

	m := &MosquittoBroker{confFile: filepath.Join(dir, "mosquitto.conf")}
	m.d = &daemon{name: "mosquitto", argv: []string{bin, "-c", m.confFile}, ready: readyTimeout, logs: new(logBuffer)}
	if err := cfg.more.writeFiles(dir); err != nil {
		return nil, fmt.Errorf("brokertest: %w", err)
	}
	passwordFile := ""
	if cfg.user != "" {
		passwordFile = filepath.Join(dir, "passwd")
		if err := writePasswordFile(passwordFile, cfg.user, cfg.password); err != nil {
			return nil, fmt.Errorf("brokertest: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		err := m.configure(&cfg, passwordFile)
		if err == nil {
			err = m.d.start()
		}
		if err == nil {
			return m, nil
		}
		// A port chosen free may have been taken before mosquitto bound it.
		if attempt == startAttempts || !strings.Contains(m.d.logs.String(), "Address already in use") {
			return nil, fmt.Errorf("brokertest: start mosquitto: %w\n%s", err, m.Describe())
		}
		m.d.logs.mark("retrying with other ports")
	}
}

// configure chooses free ports and writes the configuration file for cfg.
func (m *MosquittoBroker) configure(cfg *mosquittoConfig, passwordFile string) error {
	var conf strings.Builder
	conf.WriteString("# Generated by brokertest.\n")
	if os.Geteuid() == 0 {
		// As root, mosquitto would switch to the "mosquitto" user, which
		// cannot read the files in the test's private temporary directory.
		conf.WriteString("user root\n")
	}
	conf.WriteString("persistence false\nlog_dest stderr\n")
	if passwordFile != "" {
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\n", passwordFile)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	if cfg.maxInflight >= 0 {
		fmt.Fprintf(&conf, "max_inflight_messages %d\n", cfg.maxInflight)
	}
	fmt.Fprintf(&conf, "max_queued_messages %d\n", cfg.maxQueued)
	cfg.more.write(&conf)

	var addrs []string
	addListener := func() (string, error) {
		port, err := ports.Free("127.0.0.1")
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&conf, "\nlistener %d 127.0.0.1\n", port)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		addrs = append(addrs, addr)
		return addr, nil
	}
	addr, err := addListener()
	if err != nil {
		return err
	}
	m.url = "tcp://" + addr
	if c := cfg.certs; c != nil {
		if addr, err = addListener(); err != nil {
			return err
		}
		m.tlsURL = "ssl://" + addr
		fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\n", c.CAFile, c.ServerCert, c.ServerKey)
		if cfg.requireClientCert {
			conf.WriteString("require_certificate true\n")
		}
	}
	if cfg.websocket {
		if addr, err = addListener(); err != nil {
			return err
		}
		m.wsURL = "ws://" + addr
		conf.WriteString("protocol websockets\n")
	}
	for _, b := range cfg.bridges {
		conf.WriteString(b.config())
	}
	m.d.addrs = addrs
	return writeFile(m.confFile, conf.String(), 0o600)
}

// writePasswordFile creates a mosquitto password file holding user.
func writePasswordFile(path, user, password string) error {
	bin := lookBin("mosquitto_passwd", "/usr/bin/mosquitto_passwd")
	if bin == "" {
		return errors.New("MosquittoAuth needs mosquitto_passwd")
	}
	out, err := exec.Command(bin, "-b", "-c", path, user, password).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mosquitto_passwd: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// URL returns the address of the plain listener, such as "tcp://127.0.0.1:40123".
func (m *MosquittoBroker) URL() string { return m.url }

// TLSURL returns the address of the TLS listener, such as
// "ssl://127.0.0.1:40124", or "" without MosquittoTLS.
func (m *MosquittoBroker) TLSURL() string { return m.tlsURL }

// WSURL returns the address of the websocket listener, such as
// "ws://127.0.0.1:40125", or "" without MosquittoWebsocket.
func (m *MosquittoBroker) WSURL() string { return m.wsURL }

// Describe returns the broker's configuration file and its log so far, for
// failure messages.
func (m *MosquittoBroker) Describe() string {
	conf, _ := os.ReadFile(m.confFile)
	return fmt.Sprintf("mosquitto config %s:\n%s\nmosquitto log:\n%s", m.confFile, conf, m.d.logs)
}

// Stop stops mosquitto: SIGTERM, then SIGKILL if it has not exited within
// five seconds. It reports through the test if mosquitto had already exited
// on its own or could not be stopped cleanly. Stopping a stopped broker does
// nothing; Stop runs automatically when the test ends.
func (m *MosquittoBroker) Stop() {
	if err := m.Close(); err != nil && m.tb != nil {
		m.tb.Helper()
		m.tb.Errorf("brokertest: %v", err)
	}
}

// Close is Stop for programs: it returns what Stop reports.
func (m *MosquittoBroker) Close() error { return m.d.stop() }

// Kill ends mosquitto with SIGKILL, as a crash would; Start brings it back.
func (m *MosquittoBroker) Kill() error { return m.d.kill() }

// Start starts a stopped or killed mosquitto again with the same
// configuration on the same ports.
func (m *MosquittoBroker) Start() error {
	m.d.logs.mark("start")
	return m.d.start()
}

// Restart stops mosquitto and starts it again with the same configuration on
// the same ports, for tests of broker outages. Clients see their connections
// drop; sessions and queued messages are lost (persistence false). It fails
// t if mosquitto does not come back.
func (m *MosquittoBroker) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	if err := m.Start(); err != nil {
		t.Fatalf("brokertest: restart mosquitto: %v", err)
	}
}
