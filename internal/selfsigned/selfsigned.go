// Package selfsigned makes the self-signed certificates loophttp serves
// for local use (serve -tls-self-signed) and its tests serve
// (internal/testcert): ECDSA P-256, for localhost, 127.0.0.1 and ::1.
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"time"
)

// New makes a self-signed server certificate named cn, valid from an hour
// ago for valid from now, with its parsed Leaf. Safe from any goroutine.
func New(cn string, valid time.Duration) (tls.Certificate, error) {
	return create(cn, valid, x509.ExtKeyUsageServerAuth)
}

// NewClient is New for a client certificate (TLS client authentication).
func NewClient(cn string, valid time.Duration) (tls.Certificate, error) {
	return create(cn, valid, x509.ExtKeyUsageClientAuth)
}

// create makes a self-signed certificate for usage.
func create(cn string, valid time.Duration, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
