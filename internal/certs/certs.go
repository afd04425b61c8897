// Package certs generates a throwaway PKI for tests and demos: a certificate
// authority, a server certificate for localhost signed by it, a client
// certificate signed by it, and an unrelated second authority that can be used
// to provoke "unknown authority" verification failures.
//
// All keys are ECDSA P-256 and every certificate is valid for one day.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity is how long generated certificates are valid for.
const Validity = 24 * time.Hour

// Certs holds the paths of the PEM files written by GenerateCerts.
type Certs struct {
	// CAFile is the certificate of the authority that signed ServerCert and ClientCert.
	CAFile string
	// ServerCert is the server certificate, valid for the DNS name "localhost"
	// and the IP address 127.0.0.1.
	ServerCert string
	// ServerKey is the private key belonging to ServerCert.
	ServerKey string
	// ClientCert is a client-authentication certificate signed by CAFile.
	ClientCert string
	// ClientKey is the private key belonging to ClientCert.
	ClientKey string
	// OtherCAFile is the certificate of a second authority that signed
	// nothing here; trusting only it makes ServerCert untrusted.
	OtherCAFile string
}

// issuer is a certificate together with the key that signs with it.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// GenerateCerts creates a fresh CA, server and client certificates and an
// unrelated second CA, writes them as PEM files into dir (which must exist)
// and returns their paths. Private keys are written with mode 0600.
func GenerateCerts(dir string) (Certs, error) {
	notBefore := time.Now().Add(-time.Minute) // tolerate small clock differences
	c := Certs{
		CAFile:      filepath.Join(dir, "ca.pem"),
		ServerCert:  filepath.Join(dir, "server.pem"),
		ServerKey:   filepath.Join(dir, "server-key.pem"),
		ClientCert:  filepath.Join(dir, "client.pem"),
		ClientKey:   filepath.Join(dir, "client-key.pem"),
		OtherCAFile: filepath.Join(dir, "other-ca.pem"),
	}

	ca, err := writeCert(c.CAFile, "", caTemplate("mqttbeam test CA", notBefore), nil)
	if err != nil {
		return Certs{}, fmt.Errorf("generate CA: %w", err)
	}
	server := leafTemplate("localhost", notBefore, x509.ExtKeyUsageServerAuth)
	server.DNSNames = []string{"localhost"}
	server.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	if _, err := writeCert(c.ServerCert, c.ServerKey, server, ca); err != nil {
		return Certs{}, fmt.Errorf("generate server certificate: %w", err)
	}
	client := leafTemplate("mqttbeam test client", notBefore, x509.ExtKeyUsageClientAuth)
	if _, err := writeCert(c.ClientCert, c.ClientKey, client, ca); err != nil {
		return Certs{}, fmt.Errorf("generate client certificate: %w", err)
	}
	if _, err := writeCert(c.OtherCAFile, "", caTemplate("mqttbeam unrelated CA", notBefore), nil); err != nil {
		return Certs{}, fmt.Errorf("generate unrelated CA: %w", err)
	}
	return c, nil
}

// caTemplate returns the template of a self-signed certificate authority.
func caTemplate(name string, notBefore time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
}

// leafTemplate returns the template of an end-entity certificate for usage.
func leafTemplate(name string, notBefore time.Time, usage x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		NotBefore:   notBefore,
		NotAfter:    notBefore.Add(Validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
}

// writeCert generates a key, signs tmpl with parent (self-signed when parent
// is nil), writes the certificate to certFile and, unless keyFile is empty,
// the key to keyFile. It returns the new certificate as an issuer.
func writeCert(certFile, keyFile string, tmpl *x509.Certificate, parent *issuer) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	tmpl.SerialNumber = serial

	signer := &issuer{cert: tmpl, key: key} // self-signed
	if parent != nil {
		signer = parent
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, &key.PublicKey, signer.key)
	if err != nil {
		return nil, fmt.Errorf("sign %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", tmpl.Subject.CommonName, err)
	}
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if keyFile != "" {
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("marshal key: %w", err)
		}
		if err := writePEM(keyFile, "PRIVATE KEY", keyDER, 0o600); err != nil {
			return nil, err
		}
	}
	return &issuer{cert: cert, key: key}, nil
}

// writePEM writes one PEM block of the given type to path.
func writePEM(path, blockType string, der []byte, perm os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CertPool reads the PEM certificates in caFile into a new pool.
func CertPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s: no PEM certificates found", caFile)
	}
	return pool, nil
}

// ClientTLSConfig returns a TLS client configuration that trusts only the
// authorities in caFile and, when certFile and keyFile are not empty,
// presents that client certificate.
func ClientTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, err := CertPool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client key pair: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
