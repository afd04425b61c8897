// Package scram implements SCRAM-SHA-256 (RFC 5802, RFC 7677), the
// challenge/response mechanism brokers such as EMQX offer for MQTT 5
// enhanced authentication: the client proves it knows the password without
// sending it, and the server proves it knows the password's salted hash.
// Client is mqttio's side (mqttio.SCRAMSHA256); Server is the embedded
// test broker's.
//
// Channel binding is not supported (the GS2 header is "n,,"), and user
// names and passwords are used as given, without SASLprep normalization.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Method is the authentication method's name in MQTT 5 (and SASL).
const Method = "SCRAM-SHA-256"

// gs2Header is the GS2 header of a client without channel binding; "biws"
// is its base64 encoding, the channel binding attribute of the final message.
const (
	gs2Header = "n,,"
	biws      = "biws"
)

// Client is the client's side of one SCRAM-SHA-256 exchange.
type Client struct {
	user, password string
	nonce          string
	first          string // client-first-message-bare
	serverKey      []byte
	authMessage    string
}

// NewClient starts an exchange for user with password. nonce is the
// client's nonce; empty picks a random one (tests give a fixed one).
func NewClient(user, password, nonce string) *Client {
	if nonce == "" {
		nonce = randomNonce()
	}
	return &Client{user: user, password: password, nonce: nonce}
}

// First returns the client-first message.
func (c *Client) First() []byte {
	c.first = "n=" + escapeName(c.user) + ",r=" + c.nonce
	return []byte(gs2Header + c.first)
}

// Final answers the server-first message with the client-final message,
// which carries the client's proof.
func (c *Client) Final(serverFirst []byte) ([]byte, error) {
	if c.first == "" {
		return nil, errors.New("scram: Final before First")
	}
	attrs, err := parse(string(serverFirst), "r", "s", "i")
	if err != nil {
		return nil, fmt.Errorf("scram: server-first message: %w", err)
	}
	nonce := attrs["r"]
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return nil, errors.New("scram: the server's nonce does not extend the client's")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil {
		return nil, fmt.Errorf("scram: server-first message: salt: %w", err)
	}
	iterations, err := strconv.Atoi(attrs["i"])
	if err != nil || iterations < 1 {
		return nil, fmt.Errorf("scram: server-first message: bad iteration count %q", attrs["i"])
	}
	keys, err := deriveKeys(c.password, salt, iterations)
	if err != nil {
		return nil, err
	}
	withoutProof := "c=" + biws + ",r=" + nonce
	c.authMessage = c.first + "," + string(serverFirst) + "," + withoutProof
	c.serverKey = keys.server
	signature := hmacSHA256(keys.stored, c.authMessage)
	proof := make([]byte, len(keys.client))
	subtle.XORBytes(proof, keys.client, signature)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks the server-final message: the server's signature proves it
// knows the password's salted hash.
func (c *Client) Verify(serverFinal []byte) error {
	if c.serverKey == nil {
		return errors.New("scram: Verify before Final")
	}
	if e, ok := strings.CutPrefix(string(serverFinal), "e="); ok {
		return fmt.Errorf("scram: the server refused the proof: %s", e)
	}
	attrs, err := parse(string(serverFinal), "v")
	if err != nil {
		return fmt.Errorf("scram: server-final message: %w", err)
	}
	got, err := base64.StdEncoding.DecodeString(attrs["v"])
	if err != nil {
		return fmt.Errorf("scram: server-final message: %w", err)
	}
	if !hmac.Equal(got, hmacSHA256(c.serverKey, c.authMessage)) {
		return errors.New("scram: the server's signature does not verify: it does not know the password")
	}
	return nil
}

// Server is the server's side of one SCRAM-SHA-256 exchange for one user.
type Server struct {
	user        string
	keys        keys
	salt        []byte
	iterations  int
	nonce       string
	authMessage string
}

// NewServer starts an exchange that accepts user with password, salting it
// with a random salt over iterations rounds (4096 is RFC 7677's minimum).
func NewServer(user, password string, iterations int) (*Server, error) {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt) // never fails
	k, err := deriveKeys(password, salt, iterations)
	if err != nil {
		return nil, err
	}
	return &Server{user: user, keys: k, salt: salt, iterations: iterations}, nil
}

// First answers the client-first message with the server-first message.
func (s *Server) First(clientFirst []byte) ([]byte, error) {
	bare, ok := strings.CutPrefix(string(clientFirst), gs2Header)
	if !ok {
		return nil, errors.New("scram: client-first message: channel binding is not supported")
	}
	attrs, err := parse(bare, "n", "r")
	if err != nil {
		return nil, fmt.Errorf("scram: client-first message: %w", err)
	}
	if unescapeName(attrs["n"]) != s.user {
		return nil, errors.New("scram: unknown user")
	}
	s.nonce = attrs["r"] + randomNonce()
	first := "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.salt) + ",i=" + strconv.Itoa(s.iterations)
	s.authMessage = bare + "," + first
	return []byte(first), nil
}

// Final checks the client's proof in the client-final message and returns
// the server-final message, which carries the server's signature.
func (s *Server) Final(clientFinal []byte) ([]byte, error) {
	if s.nonce == "" {
		return nil, errors.New("scram: Final before First")
	}
	withoutProof, proof64, ok := strings.Cut(string(clientFinal), ",p=")
	if !ok {
		return nil, errors.New("scram: client-final message has no proof")
	}
	attrs, err := parse(withoutProof, "c", "r")
	if err != nil {
		return nil, fmt.Errorf("scram: client-final message: %w", err)
	}
	if attrs["c"] != biws || attrs["r"] != s.nonce {
		return nil, errors.New("scram: client-final message: wrong channel binding or nonce")
	}
	proof, err := base64.StdEncoding.DecodeString(proof64)
	if err != nil || len(proof) != sha256.Size {
		return nil, errors.New("scram: client-final message: malformed proof")
	}
	authMessage := s.authMessage + "," + withoutProof
	clientKey := make([]byte, sha256.Size)
	subtle.XORBytes(clientKey, proof, hmacSHA256(s.keys.stored, authMessage))
	if stored := sha256.Sum256(clientKey); !hmac.Equal(stored[:], s.keys.stored) {
		return nil, errors.New("scram: the client's proof does not verify: wrong password")
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSHA256(s.keys.server, authMessage))), nil
}

// keys are what a password and salt make: the client key, its hash (the
// stored key) and the server key.
type keys struct{ client, stored, server []byte }

func deriveKeys(password string, salt []byte, iterations int) (keys, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return keys{}, fmt.Errorf("scram: salting the password: %w", err)
	}
	client := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(client)
	return keys{client: client, stored: stored[:], server: hmacSHA256(salted, "Server Key")}, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// parse splits a message of comma-separated k=v attributes and checks that
// it has the wanted ones.
func parse(msg string, want ...string) (map[string]string, error) {
	attrs := map[string]string{}
	for _, part := range strings.Split(msg, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || len(k) != 1 {
			return nil, fmt.Errorf("malformed attribute %q", part)
		}
		attrs[k] = v
	}
	for _, k := range want {
		if attrs[k] == "" {
			return nil, fmt.Errorf("attribute %s is missing", k)
		}
	}
	return attrs, nil
}

// escapeName escapes a user name as SCRAM requires ('=' and ',').
func escapeName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func unescapeName(s string) string {
	return strings.NewReplacer("=2C", ",", "=3D", "=").Replace(s)
}

func randomNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails
	return base64.RawStdEncoding.EncodeToString(b)
}
