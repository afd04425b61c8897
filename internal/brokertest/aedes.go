package brokertest

import (
	_ "embed"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/ports"
)

// AedesDirEnv names the environment variable holding the directory aedes is
// installed in (npm install --prefix DIR aedes@1.2.0), by default
// mqttbeam/aedes in the user's cache directory (~/.cache/mqttbeam/aedes).
// scripts/install-brokers.sh installs it there.
const AedesDirEnv = "MQTTBEAM_AEDES_DIR"

// aedesVersion is the aedes release the tests run.
const aedesVersion = "1.2.0"

//go:embed aedes.mjs
var aedesScript string

// AedesDir returns the directory aedes is installed in (see AedesDirEnv).
func AedesDir() string {
	if d := os.Getenv(AedesDirEnv); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "mqttbeam", "aedes")
}

// aedesConfig collects the settings made by AedesOptions.
type aedesConfig struct {
	certs *certs.Certs
}

// AedesOption configures the broker started by Aedes.
type AedesOption func(*aedesConfig) error

// AedesTLS adds an MQTT-over-TLS listener presenting c.ServerCert.
func AedesTLS(c certs.Certs) AedesOption {
	return func(cfg *aedesConfig) error {
		for _, f := range []string{c.ServerCert, c.ServerKey} {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("AedesTLS: %w", err)
			}
		}
		cfg.certs = &c
		return nil
	}
}

// AedesBroker is an aedes broker (node.js) started by Aedes or StartAedes,
// keeping sessions and retained messages in memory. It accepts client ids
// of up to 256 characters (aedes' default is 23).
type AedesBroker struct {
	url    string
	tlsURL string
	d      *daemon
}

// Aedes starts aedes configured by opts and stops it when the test ends;
// its output is shown if the test fails. Without node or aedes (see
// AedesDirEnv) the test is skipped, or fails if MQTTBEAM_REQUIRE_BROKERS is
// "1".
func Aedes(t testing.TB, opts ...AedesOption) *AedesBroker {
	t.Helper()
	a, err := StartAedes(t.TempDir(), opts...)
	if err != nil {
		SkipOrFail(t, err)
	}
	cleanupServer(t, a.Describe, a.Close)
	return a
}

// StartAedes is Aedes for programs and TestMain: it writes its script into
// dir (which must exist) and returns an error (a *NotInstalledError without
// node or aedes) instead of failing a test. The caller stops the broker
// with Close.
func StartAedes(dir string, opts ...AedesOption) (*AedesBroker, error) {
	node := lookBin("node", "/usr/bin/node")
	module := filepath.Join(AedesDir(), "node_modules", "aedes", "aedes.js")
	if _, err := os.Stat(module); node == "" || err != nil {
		return nil, &NotInstalledError{Broker: "aedes", Install: fmt.Sprintf("apt-get install -y nodejs npm && npm install --prefix %s aedes@%s", AedesDir(), aedesVersion)}
	}
	var cfg aedesConfig
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("brokertest: aedes option %d is nil", i)
		}
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("brokertest: %w", err)
		}
	}
	script := filepath.Join(dir, "aedes.mjs")
	if err := writeFile(script, aedesScript, 0o600); err != nil {
		return nil, fmt.Errorf("brokertest: aedes: %w", err)
	}
	a := &AedesBroker{d: &daemon{name: "aedes", argv: []string{node, script}, ready: readyTimeout, logs: new(logBuffer)}}
	env := append(os.Environ(), "AEDES_MODULE="+module)
	listen := func(envName string) (string, error) {
		port, err := ports.Free("127.0.0.1")
		if err != nil {
			return "", err
		}
		env = append(env, envName+"="+strconv.Itoa(port))
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		a.d.addrs = append(a.d.addrs, addr)
		return addr, nil
	}
	addr, err := listen("AEDES_PORT")
	if err != nil {
		return nil, fmt.Errorf("brokertest: aedes: %w", err)
	}
	a.url = "tcp://" + addr
	if c := cfg.certs; c != nil {
		if addr, err = listen("AEDES_TLS_PORT"); err != nil {
			return nil, fmt.Errorf("brokertest: aedes: %w", err)
		}
		a.tlsURL = "ssl://" + addr
		env = append(env, "AEDES_CERT="+c.ServerCert, "AEDES_KEY="+c.ServerKey)
	}
	a.d.env = env
	if err := a.d.start(); err != nil {
		return nil, fmt.Errorf("brokertest: start aedes: %w\n%s", err, a.Describe())
	}
	return a, nil
}

// URL returns the address of the plain MQTT listener.
func (a *AedesBroker) URL() string { return a.url }

// TLSURL returns the address of the TLS listener, or "" without AedesTLS.
func (a *AedesBroker) TLSURL() string { return a.tlsURL }

// Close stops aedes; closing a stopped broker does nothing.
func (a *AedesBroker) Close() error { return a.d.stop() }

// Describe returns aedes' output, for failure messages.
func (a *AedesBroker) Describe() string { return "aedes output:\n" + a.d.logs.String() }
