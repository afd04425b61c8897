// Package embeddedbroker runs an in-process MQTT broker (mochi-mqtt v2) for
// tests and demos.
//
// Start returns a running broker on a free loopback port; options add a TLS
// listener (optionally requiring client certificates), a websocket listener,
// username/password authentication and an in-flight limit; for MQTT 5
// clients, the limits it announces in CONNACK (ReceiveMaximum,
// MaximumPacketSize, ServerKeepAlive), SCRAM-SHA-256 enhanced
// authentication and an ACL refusing with reason codes (see v5.go). Sessions are kept
// in memory only: clients that connect with clean session false keep their
// subscriptions and pending QoS 1/2 messages across reconnects for as long as
// the Broker runs.
//
// mochi keeps at most 8192 QoS 1/2 messages per session (delivered but
// unacknowledged, plus those queued while the client is away) unless
// MaxInflight lowers that; messages beyond it are dropped. mochi also does not
// preserve publish order when it redelivers a session's pending messages
// after a reconnect: they are sorted by their arrival second only. And when
// more messages wait for an MQTT 5 client than its Receive Maximum, mochi
// stops sending after about two windows' worth until the client reconnects
// (it forgets the messages it sends as slots free, so their
// acknowledgements free nothing): give MQTT 5 readers a generous window.
package embeddedbroker

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttbeam/mqttbeam/internal/certs"
	"github.com/mqttbeam/mqttbeam/internal/ports"
)

// readyTimeout bounds how long Start waits for a listener that binds in the
// background (the websocket listener) to accept connections.
const readyTimeout = 10 * time.Second

// config collects the settings made by Options.
type config struct {
	addr        string
	cert        *tls.Certificate
	clientCAs   *x509.CertPool
	user        string
	password    string
	auth        bool
	websocket   bool
	maxInflight uint16
	logger      *slog.Logger
	onSubscribe func(clientID string, filters []string)
	onDeliver   func(clientID, topic string)
	v5          v5Config
}

// Option configures a Broker in Start. An Option returns an error, naming
// itself, when given an invalid value.
type Option func(*config) error

// Addr sets the address of the plain MQTT listener. The default is
// "127.0.0.1:0", a free loopback port chosen by the operating system. The
// TLS and websocket listeners bind free ports on the same host.
func Addr(addr string) Option {
	return func(c *config) error {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("Addr(%q): %w", addr, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("Addr(%q): port %q is not a number from 0 to 65535", addr, port)
		}
		c.addr = addr
		return nil
	}
}

// TLS adds a TLS listener on a free port that presents the certificate in
// certFile with the private key in keyFile (both PEM).
func TLS(certFile, keyFile string) Option {
	return func(c *config) error {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("TLS(%q, %q): %w", certFile, keyFile, err)
		}
		c.cert = &pair
		return nil
	}
}

// ClientCA makes the TLS listener require a client certificate signed by one
// of the authorities in caFile (PEM), that is mutual TLS. It needs TLS.
func ClientCA(caFile string) Option {
	return func(c *config) error {
		pool, err := certs.CertPool(caFile)
		if err != nil {
			return fmt.Errorf("ClientCA(%q): %w", caFile, err)
		}
		c.clientCAs = pool
		return nil
	}
}

// Auth allows only clients that connect with exactly this user name and
// password, on every listener. Without Auth any client may connect.
func Auth(user, password string) Option {
	return func(c *config) error {
		if user == "" {
			return errors.New("Auth: user name must not be empty")
		}
		c.user, c.password, c.auth = user, password, true
		return nil
	}
}

// Websocket adds an MQTT-over-websocket listener on a free port. mochi binds
// it only after Start has chosen the port, so in rare cases another process
// could take the port in between.
func Websocket() Option {
	return func(c *config) error {
		c.websocket = true
		return nil
	}
}

// MaxInflight sets mochi's per-client in-flight limit, the capability
// MaximumInflight, to n, from 1 to 65535.
//
// For MQTT 3.1.1 clients this is a hard cap, not a flow-control window: the
// broker sends up to n QoS 1/2 messages that the client has not acknowledged
// and drops every further message routed to that client while n are pending
// (with a warning log "client store quota reached"); they are never delivered
// later. mochi
// applies a send window only to MQTT 5 clients (their Receive Maximum). The
// same cap also bounds how many messages a disconnected persistent session
// keeps: the first n, later ones are dropped.
func MaxInflight(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 65535 {
			return fmt.Errorf("MaxInflight(%d): must be from 1 to 65535", n)
		}
		c.maxInflight = uint16(n)
		return nil
	}
}

// Logger sends the broker's logs to l. By default they are discarded.
func Logger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("Logger: logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// OnSubscribe calls fn after the broker has accepted a subscription, with the
// client id and the filters subscribed to (shared subscriptions keep their
// "$share/{group}/" prefix). Tests use it to publish only once a reader
// listens. fn must not block.
func OnSubscribe(fn func(clientID string, filters []string)) Option {
	return func(c *config) error {
		if fn == nil {
			return errors.New("OnSubscribe: function must not be nil")
		}
		c.onSubscribe = fn
		return nil
	}
}

// OnDeliver calls fn each time the broker sends a PUBLISH to a client, with
// the client id and the topic. Tests use it to see how a broker spreads
// messages over shared subscribers. fn must not block.
func OnDeliver(fn func(clientID, topic string)) Option {
	return func(c *config) error {
		if fn == nil {
			return errors.New("OnDeliver: function must not be nil")
		}
		c.onDeliver = fn
		return nil
	}
}

// Broker is a running in-process MQTT broker. Its methods are safe for
// concurrent use.
type Broker struct {
	server    *mqtt.Server
	url       string
	tlsURL    string
	wsURL     string
	closeOnce sync.Once
	closeErr  error
}

// Start starts a broker configured by opts and returns once all of its
// listeners accept connections.
func Start(opts ...Option) (*Broker, error) {
	cfg := config{addr: "127.0.0.1:0", logger: slog.New(slog.DiscardHandler)}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("embeddedbroker: option %d is nil", i)
		}
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("embeddedbroker: %w", err)
		}
	}
	if cfg.clientCAs != nil && cfg.cert == nil {
		return nil, errors.New("embeddedbroker: ClientCA needs TLS")
	}

	caps := mqtt.NewDefaultServerCapabilities()
	if cfg.maxInflight > 0 {
		caps.MaximumInflight = cfg.maxInflight
	}
	cfg.v5.capabilities(caps)
	server := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: cfg.logger})
	b := &Broker{server: server}
	if err := b.setup(&cfg); err != nil {
		return nil, errors.Join(fmt.Errorf("embeddedbroker: %w", err), b.Close())
	}
	return b, nil
}

// setup adds the hooks and listeners described by cfg to b.server, serves
// them and waits until they accept connections.
func (b *Broker) setup(cfg *config) error {
	hook := &authHook{required: cfg.auth, user: []byte(cfg.user), password: []byte(cfg.password), v5: &cfg.v5}
	if err := b.server.AddHook(hook, nil); err != nil {
		return fmt.Errorf("add auth hook: %w", err)
	}
	if err := cfg.v5.addHooks(b.server); err != nil {
		return err
	}

	if cfg.onSubscribe != nil || cfg.onDeliver != nil {
		if err := b.server.AddHook(&observeHook{onSubscribe: cfg.onSubscribe, onDeliver: cfg.onDeliver}, nil); err != nil {
			return fmt.Errorf("add observing hook: %w", err)
		}
	}

	host, _, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return fmt.Errorf("listener address %q: %w", cfg.addr, err)
	}
	tcpAddr, err := b.addTCP("tcp", cfg.addr, nil)
	if err != nil {
		return err
	}
	b.url = "tcp://" + tcpAddr
	if cfg.cert != nil {
		tlsConfig := &tls.Config{Certificates: []tls.Certificate{*cfg.cert}, MinVersion: tls.VersionTLS12}
		if cfg.clientCAs != nil {
			tlsConfig.ClientCAs = cfg.clientCAs
			tlsConfig.ClientAuth = tls.RequireAndVerifyClientCert
		}
		tlsAddr, err := b.addTCP("tls", net.JoinHostPort(host, "0"), tlsConfig)
		if err != nil {
			return err
		}
		b.tlsURL = "ssl://" + tlsAddr
	}
	var wsAddr string
	if cfg.websocket {
		// mochi's websocket listener binds only when served, so its port is
		// chosen here and probed after Serve.
		port, err := ports.Free(dialHost(host))
		if err != nil {
			return fmt.Errorf("websocket listener: %w", err)
		}
		wsAddr = net.JoinHostPort(host, strconv.Itoa(port))
		ws := listeners.NewWebsocket(listeners.Config{Type: listeners.TypeWS, ID: "ws", Address: wsAddr})
		if err := b.server.AddListener(ws); err != nil {
			return fmt.Errorf("add websocket listener on %s: %w", wsAddr, err)
		}
		b.wsURL = "ws://" + dialAddr(wsAddr)
	}

	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if wsAddr != "" {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if err := ports.WaitAccepting(ctx, dialAddr(wsAddr)); err != nil {
			return fmt.Errorf("websocket listener: %w", err)
		}
	}
	return nil
}

// addTCP binds a TCP listener (TLS when tlsConfig is set) with the given id
// on addr and returns the address clients dial to reach it.
func (b *Broker) addTCP(id, addr string, tlsConfig *tls.Config) (string, error) {
	l := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: id, Address: addr, TLSConfig: tlsConfig})
	if err := b.server.AddListener(l); err != nil {
		return "", fmt.Errorf("add %s listener on %s: %w", id, addr, err)
	}
	return dialAddr(l.Address()), nil
}

// dialHost returns host, or the IPv4 loopback address when host is empty or
// unspecified (a wildcard bind), for use in URLs.
func dialHost(host string) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return host
}

// dialAddr rewrites a listener address "host:port" into one that clients on
// this machine can dial.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(dialHost(host), port)
}

// URL returns the address of the plain MQTT listener, such as
// "tcp://127.0.0.1:40123".
func (b *Broker) URL() string { return b.url }

// TLSURL returns the address of the TLS listener, such as
// "ssl://127.0.0.1:40124", or "" when the broker was started without TLS.
func (b *Broker) TLSURL() string { return b.tlsURL }

// WSURL returns the address of the websocket listener, such as
// "ws://127.0.0.1:40125", or "" when the broker was started without Websocket.
func (b *Broker) WSURL() string { return b.wsURL }

// Close disconnects all clients, closes the listeners, freeing their ports,
// and discards all sessions. It waits for the client connections to end.
// Calls after the first return the first call's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if err := b.server.Close(); err != nil {
			b.closeErr = fmt.Errorf("embeddedbroker: close: %w", err)
		}
	})
	return b.closeErr
}

// authHook admits every client or, when required is set, only clients
// presenting user and password. Admitted clients may publish and subscribe to
// any topic. (mochi's hooks/auth package is not used because it pulls in a
// YAML dependency this module does not otherwise need.)
type authHook struct {
	mqtt.HookBase
	required bool
	user     []byte
	password []byte
	v5       *v5Config // SCRAM and the ACL
}

// ID identifies the hook to mochi.
func (h *authHook) ID() string { return "embeddedbroker-auth" }

// Provides reports that the hook authenticates connections and checks ACLs.
func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate accepts a connection when no credentials are
// required or it carries exactly the configured user name and password, or
// with SCRAM, when it passes the SCRAM-SHA-256 exchange.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.v5.scram != nil {
		return h.v5.scram.authenticate(cl, pk)
	}
	if !h.required {
		return true
	}
	userOK := subtle.ConstantTimeCompare(pk.Connect.Username, h.user) == 1
	passwordOK := subtle.ConstantTimeCompare(pk.Connect.Password, h.password) == 1
	return pk.Connect.UsernameFlag && userOK && passwordOK
}

// OnACLCheck allows admitted clients every topic, or what ACL allows.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	return h.v5.acl == nil || h.v5.acl(cl.ID, topic, write)
}

// observeHook reports accepted subscriptions and deliveries to functions.
type observeHook struct {
	mqtt.HookBase
	onSubscribe func(clientID string, filters []string)
	onDeliver   func(clientID, topic string)
}

// ID identifies the hook to mochi.
func (h *observeHook) ID() string { return "embeddedbroker-observe" }

// Provides reports the events the hook observes.
func (h *observeHook) Provides(b byte) bool {
	return (b == mqtt.OnSubscribed && h.onSubscribe != nil) || (b == mqtt.OnPacketSent && h.onDeliver != nil)
}

// OnSubscribed passes the subscribed filters to onSubscribe.
func (h *observeHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	filters := make([]string, len(pk.Filters))
	for i, f := range pk.Filters {
		filters[i] = f.Filter
	}
	h.onSubscribe(cl.ID, filters)
}

// OnPacketSent passes each PUBLISH sent to a client to onDeliver.
func (h *observeHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		h.onDeliver(cl.ID, pk.TopicName)
	}
}
