package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttbeam/mqttbeam/internal/certs"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block, "no PEM block in %s", path)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func TestGenerateCerts(t *testing.T) {
	c, err := certs.GenerateCerts(t.TempDir())
	require.NoError(t, err)

	roots, err := certs.CertPool(c.CAFile)
	require.NoError(t, err)
	others, err := certs.CertPool(c.OtherCAFile)
	require.NoError(t, err)

	server := readCert(t, c.ServerCert)
	for _, name := range []string{"localhost", "127.0.0.1"} {
		_, err := server.Verify(x509.VerifyOptions{DNSName: name, Roots: roots})
		require.NoError(t, err, "server certificate for %s", name)
	}
	_, err = server.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: others})
	var unknown x509.UnknownAuthorityError
	require.True(t, errors.As(err, &unknown), "want unknown authority, got %v", err)

	client := readCert(t, c.ClientCert)
	_, err = client.Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	require.NoError(t, err)

	_, err = tls.LoadX509KeyPair(c.ServerCert, c.ServerKey)
	require.NoError(t, err)
	cfg, err := certs.ClientTLSConfig(c.CAFile, c.ClientCert, c.ClientKey)
	require.NoError(t, err)
	require.Len(t, cfg.Certificates, 1)

	info, err := os.Stat(c.ClientKey)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestCertPoolErrors(t *testing.T) {
	_, err := certs.CertPool(t.TempDir() + "/missing.pem")
	require.ErrorIs(t, err, os.ErrNotExist)

	empty := t.TempDir() + "/empty.pem"
	require.NoError(t, os.WriteFile(empty, []byte("not pem"), 0o600))
	_, err = certs.CertPool(empty)
	require.ErrorContains(t, err, "no PEM certificates")
}
