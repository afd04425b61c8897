package embeddedbroker

import (
	"errors"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttbeam/mqttbeam/internal/scram"
)

// v5Config collects the settings of the MQTT 5 options below (they also
// affect 3.1.1 clients where the protocol allows: ACL, OnSessionExpired,
// OnPing).
type v5Config struct {
	receiveMaximum  uint16
	maxPacketSize   uint32
	serverKeepAlive uint16
	scram           *scramAuth
	acl             func(clientID, topic string, write bool) bool
	onExpired       func(clientID string)
	onPing          func(clientID string)
}

// ReceiveMaximum sets the Receive Maximum the broker announces in CONNACK
// to MQTT 5 clients (mochi's default is 1024): how many QoS 1 and 2
// publishes a client may have unacknowledged towards the broker. mochi
// disconnects a client that exceeds it (reason 0x93), which only QoS 2
// publishes can do, since mochi acknowledges QoS 1 publishes at once.
func ReceiveMaximum(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 65535 {
			return fmt.Errorf("ReceiveMaximum(%d): must be from 1 to 65535", n)
		}
		c.v5.receiveMaximum = uint16(n)
		return nil
	}
}

// MaximumPacketSize makes the broker refuse packets larger than n bytes
// (it disconnects the client) and announce the limit in CONNACK to MQTT 5
// clients.
func MaximumPacketSize(n int) Option {
	return func(c *config) error {
		if n < 64 || int64(n) > 1<<28 {
			return fmt.Errorf("MaximumPacketSize(%d): must be from 64 to 268435456", n)
		}
		c.v5.maxPacketSize = uint32(n)
		return nil
	}
}

// ServerKeepAlive makes the broker assign keep-alive d, in whole seconds,
// to every client, whatever the client asked for: MQTT 5 clients learn it
// from CONNACK (Server Keep Alive). mochi disconnects a client that sends
// nothing for one and a half times its keep-alive.
func ServerKeepAlive(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second || d > 65535*time.Second || d%time.Second != 0 {
			return fmt.Errorf("ServerKeepAlive(%v): must be whole seconds from 1s to 65535s", d)
		}
		c.v5.serverKeepAlive = uint16(d / time.Second)
		return nil
	}
}

// SCRAM admits only clients that authenticate as user with password
// through MQTT 5 enhanced authentication with the SCRAM-SHA-256 method: the
// client's CONNECT carries the client-first message, the broker challenges
// it with an AUTH packet (server-first), the client answers with its proof
// (client-final), and the CONNACK carries the broker's signature
// (server-final). A client that uses no or another method, or fails the
// proof, is refused with reason 0x86 (bad user name or password). It
// replaces Auth.
func SCRAM(user, password string) Option {
	return func(c *config) error {
		if user == "" || password == "" {
			return errors.New("SCRAM: user name and password must not be empty")
		}
		c.v5.scram = &scramAuth{user: user, password: password, final: map[*mqtt.Client][]byte{}}
		return nil
	}
}

// ACL decides which topics clients may publish to (write) and which filters
// they may subscribe to: allow returns false to refuse. MQTT 5 clients get
// reason 0x87 (not authorized) in the SUBACK or PUBACK; mochi disconnects
// MQTT 3.1.1 clients that publish where they may not. allow must not block.
func ACL(allow func(clientID, topic string, write bool) bool) Option {
	return funcOption("ACL", allow == nil, func(c *config) { c.v5.acl = allow })
}

// OnSessionExpired calls fn with the client id when the broker deletes the
// session of a client that has been disconnected for longer than its
// session expiry interval (MQTT 5; mochi checks once a second). fn must not
// block.
func OnSessionExpired(fn func(clientID string)) Option {
	return funcOption("OnSessionExpired", fn == nil, func(c *config) { c.v5.onExpired = fn })
}

// OnPing calls fn with the client id each time a client sends PINGREQ.
// Tests use it to see that a client keeps its connection alive. fn must not
// block.
func OnPing(fn func(clientID string)) Option {
	return funcOption("OnPing", fn == nil, func(c *config) { c.v5.onPing = fn })
}

// funcOption is the Option of a function setting, which must not be nil.
func funcOption(name string, isNil bool, set func(*config)) Option {
	return func(c *config) error {
		if isNil {
			return fmt.Errorf("%s: function must not be nil", name)
		}
		set(c)
		return nil
	}
}

// capabilities applies the settings that are mochi capabilities.
func (c *v5Config) capabilities(caps *mqtt.Capabilities) {
	if c.receiveMaximum > 0 {
		caps.ReceiveMaximum = c.receiveMaximum
	}
	if c.maxPacketSize > 0 {
		caps.MaximumPacketSize = c.maxPacketSize
	}
}

// addHooks adds the hook of the settings that need one.
func (c *v5Config) addHooks(server *mqtt.Server) error {
	h := &v5Hook{cfg: c}
	if !h.needed() {
		return nil
	}
	if err := server.AddHook(h, nil); err != nil {
		return fmt.Errorf("add MQTT 5 hook: %w", err)
	}
	return nil
}

// v5Hook assigns keep-alives, completes CONNACKs (the SCRAM server-final
// message, the maximum packet size) and reports expired sessions and pings.
type v5Hook struct {
	mqtt.HookBase
	cfg *v5Config
}

// ID identifies the hook to mochi.
func (h *v5Hook) ID() string { return "embeddedbroker-v5" }

func (h *v5Hook) needed() bool {
	c := h.cfg
	return c.serverKeepAlive > 0 || c.maxPacketSize > 0 || c.scram != nil || c.onExpired != nil || c.onPing != nil
}

// Provides reports the events the hook handles.
func (h *v5Hook) Provides(b byte) bool {
	c := h.cfg
	switch b {
	case mqtt.OnConnect:
		return c.serverKeepAlive > 0
	case mqtt.OnPacketEncode:
		return c.maxPacketSize > 0 || c.scram != nil
	case mqtt.OnClientExpired:
		return c.onExpired != nil
	case mqtt.OnPacketRead:
		return c.onPing != nil
	}
	return false
}

// OnConnect assigns the server keep-alive.
func (h *v5Hook) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	cl.State.ServerKeepalive = true
	cl.State.Keepalive = h.cfg.serverKeepAlive
	return nil
}

// OnPacketEncode completes a successful CONNACK to an MQTT 5 client.
func (h *v5Hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != 0 || cl.Properties.ProtocolVersion != 5 {
		return pk
	}
	if h.cfg.maxPacketSize > 0 {
		pk.Properties.MaximumPacketSize = h.cfg.maxPacketSize
	}
	if s := h.cfg.scram; s != nil {
		if final, ok := s.takeFinal(cl); ok {
			pk.Properties.AuthenticationMethod = scram.Method
			pk.Properties.AuthenticationData = final
		}
	}
	return pk
}

// OnClientExpired reports an expired session.
func (h *v5Hook) OnClientExpired(cl *mqtt.Client) { h.cfg.onExpired(cl.ID) }

// OnPacketRead reports pings.
func (h *v5Hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Pingreq {
		h.cfg.onPing(cl.ID)
	}
	return pk, nil
}

// scramAuth runs SCRAM-SHA-256 exchanges for one user.
type scramAuth struct {
	user, password string

	mu    sync.Mutex
	final map[*mqtt.Client][]byte // server-final messages for the CONNACKs
}

// authenticate runs the exchange with a connecting client: mochi calls it
// after reading the CONNECT and before it starts reading the client's
// packets, so the exchange reads the client's AUTH answer itself.
func (s *scramAuth) authenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Properties.ProtocolVersion != 5 || pk.Properties.AuthenticationMethod != scram.Method {
		return false
	}
	server, err := scram.NewServer(s.user, s.password, 4096)
	if err != nil {
		return false
	}
	challenge, err := server.First(pk.Properties.AuthenticationData)
	if err != nil {
		return false
	}
	auth := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Auth},
		ReasonCode:  packets.CodeContinueAuthentication.Code,
		Properties:  packets.Properties{AuthenticationMethod: scram.Method, AuthenticationData: challenge},
	}
	if err := cl.WritePacket(auth); err != nil {
		return false
	}
	var fh packets.FixedHeader
	if err := cl.ReadFixedHeader(&fh); err != nil || fh.Type != packets.Auth {
		return false
	}
	answer, err := cl.ReadPacket(&fh)
	if err != nil || answer.ReasonCode != packets.CodeContinueAuthentication.Code || answer.Properties.AuthenticationMethod != scram.Method {
		return false
	}
	final, err := server.Final(answer.Properties.AuthenticationData)
	if err != nil {
		return false
	}
	s.mu.Lock()
	s.final[cl] = final
	s.mu.Unlock()
	return true
}

// takeFinal returns the server-final message of cl's exchange, once.
func (s *scramAuth) takeFinal(cl *mqtt.Client) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	final, ok := s.final[cl]
	delete(s.final, cl)
	return final, ok
}
