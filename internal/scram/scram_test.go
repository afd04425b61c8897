package scram

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

// The exchange of RFC 7677, section 3.
func TestClientMatchesRFC7677(t *testing.T) {
	c := NewClient("user", "pencil", "rOprNGfwEbeRWgbNEkqO")
	require.Equal(t, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", string(c.First()))
	final, err := c.Final([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	require.NoError(t, err)
	require.Equal(t, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", string(final))
	require.NoError(t, c.Verify([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")))
	require.ErrorContains(t, c.Verify([]byte("v="+base64.StdEncoding.EncodeToString(make([]byte, 32)))), "does not know the password")
	require.ErrorContains(t, c.Verify([]byte("e=invalid-proof")), "invalid-proof")
}

func exchange(t *testing.T, s *Server, c *Client) error {
	t.Helper()
	first, err := s.First(c.First())
	if err != nil {
		return err
	}
	final, err := c.Final(first)
	require.NoError(t, err)
	serverFinal, err := s.Final(final)
	if err != nil {
		return err
	}
	return c.Verify(serverFinal)
}

func TestClientAndServerAgree(t *testing.T) {
	s, err := NewServer("dev,ice=1", "s3cret", 4096)
	require.NoError(t, err)
	require.NoError(t, exchange(t, s, NewClient("dev,ice=1", "s3cret", "")))

	s, err = NewServer("dev,ice=1", "s3cret", 4096)
	require.NoError(t, err)
	require.ErrorContains(t, exchange(t, s, NewClient("dev,ice=1", "wrong", "")), "wrong password")

	s, err = NewServer("alice", "s3cret", 4096)
	require.NoError(t, err)
	require.ErrorContains(t, exchange(t, s, NewClient("mallory", "s3cret", "")), "unknown user")
}

func TestClientRejectsAServerThatDoesNotExtendItsNonce(t *testing.T) {
	c := NewClient("user", "pencil", "abc")
	c.First()
	_, err := c.Final([]byte("r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	require.ErrorContains(t, err, "nonce")
	_, err = c.Final([]byte("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ=="))
	require.ErrorContains(t, err, "attribute i is missing")
}
