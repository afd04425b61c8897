package mqttio

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqttbeam/mqttbeam/internal/scram"
)

func init() { register.Function2x2(SCRAMSHA256) }

// AuthStep computes the client's side of an MQTT 5 enhanced authentication
// exchange (see Auth), one step per call: it reads what the broker sent in
// x and returns the authentication data to answer with. It must be a
// top-level function registered with register.Function2x2, so that workers
// can find it.
type AuthStep func(ctx context.Context, x *AuthExchange) ([]byte, error)

// AuthExchange is one run of an enhanced authentication exchange: one
// connection attempt. The step function is called with Step 0 for the data
// of the CONNECT packet, then once per AUTH packet the broker challenges the
// client with, and last with Final set and the data of the broker's CONNACK.
type AuthExchange struct {
	// Method is the authentication method, as given to Auth.
	Method string
	// Username and Password are those of Credentials or CredentialsFrom (the
	// password looked up on the worker), for methods that prove the
	// knowledge of a password, such as SCRAM. With Auth the password is not
	// sent in the CONNECT packet; the user name is.
	Username, Password string
	// Step counts the calls of the exchange, from 0.
	Step int
	// Data is what the broker sent: nil at step 0, then the authentication
	// data of its AUTH packet or, with Final, of its CONNACK.
	Data []byte
	// Final is set for the last call, when the broker has accepted the
	// client: an error then refuses the broker (e.g. its proof of knowing
	// the password does not verify), and the returned data is not used.
	Final bool

	state any
}

// State returns what the step function kept with SetState in an earlier
// step of the exchange; nil at step 0.
func (x *AuthExchange) State() any { return x.state }

// SetState keeps v for the later steps of the exchange.
func (x *AuthExchange) SetState(v any) { x.state = v }

// authSpec is enhanced authentication as a dialSpec needs it.
type authSpec struct {
	method             string
	step               AuthStep
	username, password string
}

// start begins an exchange on the network connection conn.
func (a *authSpec) start(conn net.Conn) *auther {
	return &auther{step: a.step, conn: conn, x: &AuthExchange{Method: a.method, Username: a.username, Password: a.password}}
}

// auther runs one exchange; it is paho.golang's AuthHandler.
type auther struct {
	step AuthStep
	x    *AuthExchange
	conn net.Conn
	ctx  context.Context // the connection attempt's, while it lasts
	err  error           // of a failed step while connecting
}

// first is step 0: the CONNECT packet's data.
func (a *auther) first(ctx context.Context) ([]byte, error) {
	a.ctx = ctx
	return a.step(ctx, a.x)
}

// Authenticate answers a challenge of the broker. A failed step closes the
// connection, which ends the connection attempt with that step's error.
func (a *auther) Authenticate(challenge *paho.Auth) *paho.Auth {
	a.x.Step++
	a.x.Data = nil
	if challenge.Properties != nil {
		a.x.Data = challenge.Properties.AuthData
	}
	ctx := a.ctx
	if ctx == nil || ctx.Err() != nil { // the broker re-authenticates later on
		ctx = context.Background()
	}
	data, err := a.step(ctx, a.x)
	if err != nil {
		a.err = err
		_ = a.conn.Close()
	}
	return &paho.Auth{ReasonCode: 0x18, Properties: &paho.AuthProperties{AuthMethod: a.x.Method, AuthData: data}}
}

// Authenticated is paho's notice of the broker's success.
func (a *auther) Authenticated() {}

// final is the last step, with the CONNACK's data.
func (a *auther) final(ctx context.Context, ca *paho.Connack) error {
	a.x.Step++
	a.x.Final, a.x.Data = true, nil
	if ca.Properties != nil {
		a.x.Data = ca.Properties.AuthData
	}
	_, err := a.step(ctx, a.x)
	a.ctx = nil
	return err
}

// scramState is SCRAMSHA256's state of an exchange.
type scramState struct {
	client   *scram.Client
	verified bool
}

// SCRAMSHA256 is the AuthStep of SCRAM-SHA-256 (RFC 7677), the
// challenge/response method EMQX offers for MQTT 5: give
// Auth("SCRAM-SHA-256", SCRAMSHA256) and the user name and password with
// Credentials or CredentialsFrom. The password never travels: the reader
// proves it knows it, and checks the broker's proof of knowing its salted
// hash, in the CONNACK or in a last AUTH packet. Channel binding is not
// supported, and the password is used as given (no SASLprep).
func SCRAMSHA256(_ context.Context, x *AuthExchange) ([]byte, error) {
	if x.Step == 0 {
		if x.Username == "" {
			return nil, errors.New("SCRAM-SHA-256 needs a user name and password (Credentials or CredentialsFrom)")
		}
		c := scram.NewClient(x.Username, x.Password, "")
		x.SetState(&scramState{client: c})
		return c.First(), nil
	}
	s, ok := x.State().(*scramState)
	if !ok {
		return nil, errors.New("SCRAM-SHA-256: the exchange lost its state")
	}
	data := string(x.Data)
	switch {
	case s.verified:
		return nil, nil
	case x.Final && len(x.Data) == 0:
		return nil, errors.New("SCRAM-SHA-256: the broker accepted the client without proving that it knows the password")
	case x.Final || strings.HasPrefix(data, "v=") || strings.HasPrefix(data, "e="):
		if err := s.client.Verify(x.Data); err != nil {
			return nil, err
		}
		s.verified = true
		return nil, nil
	}
	return s.client.Final(x.Data)
}
