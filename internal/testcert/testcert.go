// Package testcert makes the self-signed certificate the tests of the
// repository serve TLS with: one for 127.0.0.1, ::1 and localhost, made
// once per process, and the pool that trusts it. Tests only.
package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"time"

	"github.com/loophttp/loophttp/internal/selfsigned"
)

var made = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	cert, err := New("loophttp test")
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return cert, pool
})

// Pair returns the test certificate and a pool that trusts it.
func Pair() (tls.Certificate, *x509.CertPool) { return made() }

// Server returns a server configuration with the test certificate.
func Server() *tls.Config {
	cert, _ := made()
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// Client returns a client configuration that trusts the test certificate.
func Client() *tls.Config {
	_, pool := made()
	return &tls.Config{RootCAs: pool}
}

// New makes a self-signed ECDSA P-256 certificate named cn, for
// 127.0.0.1, ::1 and localhost, valid for a day.
func New(cn string) (tls.Certificate, error) { return selfsigned.New(cn, 24*time.Hour) }

// NewClient makes a self-signed client certificate named cn (for TLS
// client authentication), valid for a day.
func NewClient(cn string) (tls.Certificate, error) { return selfsigned.NewClient(cn, 24*time.Hour) }

// PEM returns the certificate and the key of cert in PEM.
func PEM(cert tls.Certificate) (certPEM, keyPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return certPEM, keyPEM, nil
}
