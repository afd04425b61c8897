package mqttio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// schemes maps the broker URL schemes Read and Write accept to whether they
// use TLS.
var schemes = map[string]bool{
	"tcp": false, "mqtt": false, "ws": false,
	"ssl": true, "tls": true, "mqtts": true, "wss": true,
}

// parseBrokers checks the broker URLs and returns them in a canonical form
// without credentials (user:password@ in a URL is refused, so that passwords
// do not travel in URLs that end up in logs; use Credentials).
func parseBrokers(brokers []string) ([]string, error) {
	if len(brokers) == 0 {
		return nil, errors.New("mqttio: no broker URL given")
	}
	out := make([]string, 0, len(brokers))
	for _, b := range brokers {
		u, err := url.Parse(strings.TrimSpace(b))
		if err != nil {
			return nil, fmt.Errorf("mqttio: broker URL %q: %w", redactURL(b), err)
		}
		if _, ok := schemes[u.Scheme]; !ok {
			return nil, fmt.Errorf("mqttio: broker URL %q: scheme must be one of tcp, mqtt, ssl, tls, mqtts, ws, wss", redactURL(b))
		}
		if u.User != nil {
			return nil, fmt.Errorf("mqttio: broker URL %q: put credentials in the Credentials option, not in the URL", redactURL(b))
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("mqttio: broker URL %q has no host", b)
		}
		if u.Port() == "" && !strings.HasPrefix(u.Scheme, "ws") {
			return nil, fmt.Errorf("mqttio: broker URL %q has no port (1883 is MQTT's, 8883 MQTT over TLS's)", b)
		}
		out = append(out, u.String())
	}
	return out, nil
}

// redactURL hides the password of a URL that carries one.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.Index(raw, "@"); i >= 0 {
			return "[redacted]" + raw[i:]
		}
		return raw
	}
	return u.Redacted()
}

// dialSpec resolves what connecting as clientID needs: the password and the
// client key are looked up on the worker (CredentialsFrom,
// TLSClientCertFrom) each time, so that rotated secrets are picked up, and
// never kept beyond the connection attempt. The caller adds the session
// settings and callbacks.
func (c *connConfig) dialSpec(brokers []string, clientID string) (dialSpec, error) {
	s := dialSpec{brokers: brokers, clientID: clientID, keepAlive: c.KeepAlive, connectTimeout: c.ConnectTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), c.ConnectTimeout)
	defer cancel()
	if c.Username != "" {
		pw, err := c.password(ctx)
		if err != nil {
			return s, err
		}
		s.username, s.password = c.Username, pw
	}
	usesTLS := c.TLS.Enabled
	for _, b := range brokers {
		if u, err := url.Parse(b); err == nil && schemes[u.Scheme] {
			usesTLS = true
		}
	}
	if usesTLS {
		tc, err := c.TLS.build(ctx)
		if err != nil {
			return s, err
		}
		s.tls = tc
	}
	if c.AuthMethod != "" {
		step, err := c.authStep()
		if err != nil {
			return s, err
		}
		s.auth = &authSpec{method: c.AuthMethod, step: step, username: s.username, password: s.password}
	}
	return s, nil
}

// dial connects with the client of the protocol version.
func (c *connConfig) dial(ctx context.Context, s *dialSpec) (brokerConn, error) {
	if c.Protocol == 5 {
		return dial5(ctx, s)
	}
	return dial3(ctx, s)
}

// allPlainTCP reports whether every broker is reached over plain TCP.
func allPlainTCP(brokers []string) bool {
	for _, b := range brokers {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "tcp" && u.Scheme != "mqtt") {
			return false
		}
	}
	return true
}

func (t *tlsConfig) build(ctx context.Context) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // only when the user asks, see TLSInsecureSkipVerify
	}
	if len(t.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CAPEM) {
			return nil, errors.New("mqttio: TLSCAFile holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if len(t.CertPEM) > 0 {
		key, err := t.clientKey(ctx)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(t.CertPEM, key)
		if err != nil {
			return nil, fmt.Errorf("mqttio: the TLS client certificate and key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// permanentError marks a connection failure that retrying cannot fix: bad
// credentials, a refused client id, an untrusted certificate.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// classifyConnectError turns a paho connection error into one that says what
// went wrong and whether retrying can help.
func classifyConnectError(brokers []string, clientID string, err error) error {
	where := fmt.Sprintf("connecting to %s as client %q", strings.Join(brokers, ","), clientID)
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		alert     tls.AlertError
		recErr    *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return &permanentError{fmt.Errorf("%s: broker refused the credentials (bad user name or password): %w", where, err)}
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		// MQTT 3.1.1 brokers (Mosquitto, mochi) answer a bad password this way too.
		return &permanentError{fmt.Errorf("%s: broker refused the connection (not authorised: bad user name or password, or the user may not connect; check the credentials): %w", where, err)}
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return &permanentError{fmt.Errorf("%s: broker rejected the client id: %w", where, err)}
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion):
		return &permanentError{fmt.Errorf("%s: broker does not speak MQTT 3.1.1: %w", where, err)}
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr), errors.As(err, &recErr):
		return &permanentError{fmt.Errorf("%s: TLS: the broker's certificate is not trusted (check TLSCAFile and TLSServerName): %w", where, err)}
	case errors.As(err, &alert), strings.Contains(err.Error(), "remote error: tls"):
		return &permanentError{fmt.Errorf("%s: TLS: the broker refused the handshake (a client certificate may be required or not trusted, see TLSClientCert): %w", where, err)}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%s: network: %w", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// isPermanent reports whether err cannot be cured by retrying.
func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
