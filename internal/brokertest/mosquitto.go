package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/ports"
)

const (
	// RequireMosquittoEnv names the environment variable that, set to "1",
	// turns a missing mosquitto binary from a skipped test into a failure.
	RequireMosquittoEnv = "MQTTBEAM_REQUIRE_MOSQUITTO"

	// installHint is the skip or failure message when mosquitto is missing.
	installHint = "mosquitto not installed: apt-get install -y mosquitto mosquitto-clients"

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

// MosquittoBroker is a mosquitto process started by Mosquitto. (The type
// cannot share the function's name in Go.) Sessions live in memory only
// (persistence false), so Restart discards them.
type MosquittoBroker struct {
	tb       testing.TB
	bin      string
	confFile string
	addrs    []string // listener addresses, probed for readiness
	url      string
	tlsURL   string
	wsURL    string
	logs     *logBuffer

	mu   sync.Mutex
	proc *process // nil while stopped
}

// Mosquitto starts the mosquitto binary with a configuration generated in
// t.TempDir(): a plain listener on a free 127.0.0.1 port plus the listeners
// added by opts, anonymous access unless MosquittoAuth is given, no
// persistence and no queue limit. It returns once every listener accepts
// connections and stops the broker when the test ends. mosquitto's log is
// shown with t.Log only if the test fails.
//
// Without the mosquitto binary the test is skipped, or fails if the
// environment variable MQTTBEAM_REQUIRE_MOSQUITTO is "1".
func Mosquitto(t testing.TB, opts ...MosquittoOption) *MosquittoBroker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		// Debian installs it in /usr/sbin, which is not on every user's PATH.
		bin, err = exec.LookPath("/usr/sbin/mosquitto")
	}
	if err != nil {
		if os.Getenv(RequireMosquittoEnv) == "1" {
			t.Fatal(installHint)
		}
		t.Skip(installHint)
	}

	cfg := mosquittoConfig{maxInflight: -1}
	for i, opt := range opts {
		if opt == nil {
			t.Fatalf("brokertest: mosquitto option %d is nil", i)
		}
		if err := opt(&cfg); err != nil {
			t.Fatalf("brokertest: %v", err)
		}
	}
	if cfg.requireClientCert && cfg.certs == nil {
		t.Fatal("brokertest: MosquittoRequireClientCert needs MosquittoTLS")
	}

	dir := t.TempDir()
	m := &MosquittoBroker{tb: t, bin: bin, confFile: filepath.Join(dir, "mosquitto.conf"), logs: new(logBuffer)}
	// Registered first so that it runs last, after Stop has logged shutdown.
	t.Cleanup(func() {
		if t.Failed() {
			conf, _ := os.ReadFile(m.confFile)
			t.Logf("mosquitto config %s:\n%s\nmosquitto log:\n%s", m.confFile, conf, m.logs)
		}
	})
	passwordFile := ""
	if cfg.user != "" {
		passwordFile = filepath.Join(dir, "passwd")
		if err := writePasswordFile(passwordFile, cfg.user, cfg.password); err != nil {
			t.Fatalf("brokertest: %v", err)
		}
	}

	for attempt := 1; ; attempt++ {
		err := m.configure(&cfg, passwordFile)
		if err == nil {
			err = m.start()
		}
		if err == nil {
			break
		}
		// A port chosen free may have been taken before mosquitto bound it.
		if attempt == startAttempts || !strings.Contains(m.logs.String(), "Address already in use") {
			t.Fatalf("brokertest: start mosquitto: %v", err)
		}
		m.logs.mark("retrying with other ports")
	}
	t.Cleanup(m.Stop)
	return m
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

	m.addrs = m.addrs[:0]
	addListener := func() (string, error) {
		port, err := ports.Free("127.0.0.1")
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&conf, "\nlistener %d 127.0.0.1\n", port)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		m.addrs = append(m.addrs, addr)
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
	if err := os.WriteFile(m.confFile, []byte(conf.String()), 0o600); err != nil {
		return fmt.Errorf("write mosquitto config: %w", err)
	}
	return nil
}

// writePasswordFile creates a mosquitto password file holding user.
func writePasswordFile(path, user, password string) error {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		return fmt.Errorf("MosquittoAuth needs mosquitto_passwd: %w", err)
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

// Stop stops mosquitto: SIGTERM, then SIGKILL if it has not exited within
// five seconds. It reports through the test if mosquitto had already exited
// on its own or could not be stopped cleanly. Stopping a stopped broker does
// nothing; Stop runs automatically when the test ends.
func (m *MosquittoBroker) Stop() {
	m.tb.Helper()
	m.mu.Lock()
	p := m.proc
	m.proc = nil
	m.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.stop(); err != nil {
		m.tb.Errorf("brokertest: %v", err)
	}
}

// Restart stops mosquitto and starts it again with the same configuration on
// the same ports, for tests of broker outages. Clients see their connections
// drop; sessions and queued messages are lost (persistence false). It fails
// t if mosquitto does not come back.
func (m *MosquittoBroker) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	m.logs.mark("restart")
	if err := m.start(); err != nil {
		t.Fatalf("brokertest: restart mosquitto: %v", err)
	}
}

// start runs mosquitto with m.confFile and waits until all listeners accept
// connections. On failure the process is gone when start returns.
func (m *MosquittoBroker) start() error {
	cmd := exec.Command(m.bin, "-c", m.confFile)
	cmd.Stdout = m.logs
	cmd.Stderr = m.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", m.bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	alive, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case <-p.exited:
			cancel(fmt.Errorf("mosquitto exited: %w", p.err))
		case <-alive.Done():
		}
	}()
	ctx, cancelTimeout := context.WithTimeout(alive, readyTimeout)
	defer cancelTimeout()
	if err := ports.WaitAccepting(ctx, m.addrs...); err != nil {
		return errors.Join(err, p.stop())
	}

	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	return nil
}

// process is one run of the mosquitto binary.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
	err    error         // cmd.Wait's result, set before exited is closed
}

// stop terminates the process with SIGTERM, or SIGKILL after stopTimeout,
// and waits for it to exit.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return fmt.Errorf("mosquitto had exited on its own: %v", p.err)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send SIGTERM to mosquitto: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("mosquitto exit after SIGTERM: %w", p.err)
		}
		return nil
	case <-timer.C:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill mosquitto: %w", err)
	}
	<-p.exited
	return fmt.Errorf("mosquitto ignored SIGTERM for %v and was killed", stopTimeout)
}

// logBuffer collects mosquitto's output; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the log.
func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// mark appends a line that separates the runs of mosquitto in the log.
func (l *logBuffer) mark(event string) {
	fmt.Fprintf(l, "----- brokertest: %s -----\n", event)
}

// String returns everything logged so far.
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
