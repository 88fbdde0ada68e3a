package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/loophttp/loophttp/internal/selfsigned"

	"github.com/loophttp/loophttp/api"
)

// serve's TLS: -tls-cert and -tls-key serve HTTPS with a certificate from
// files, reloaded on SIGHUP (connections open keep theirs; new handshakes
// get the new one); -tls-self-signed makes one at start for local use and
// prints its fingerprint.

// tlsFlags are serve's TLS flags.
type tlsFlags struct {
	cert, key  *string
	selfSigned *bool
	clientCA   *string
}

// addTLSFlags adds the TLS flags to fs.
func addTLSFlags(fs *flag.FlagSet) *tlsFlags {
	return &tlsFlags{
		cert:       fs.String("tls-cert", "", "serve HTTPS with the certificate (chain) in this PEM `FILE`; reloaded on SIGHUP"),
		key:        fs.String("tls-key", "", "the private key of -tls-cert, a PEM `FILE`"),
		selfSigned: fs.Bool("tls-self-signed", false, "serve HTTPS with a certificate made at start for localhost, 127.0.0.1 and ::1 (its SHA-256 fingerprint is printed)"),
		clientCA:   fs.String("tls-client-ca", "", "require every client to present a certificate signed by an authority in this PEM `FILE` (mutual TLS)"),
	}
}

// config returns the TLS configuration the flags ask for, nil for plain
// HTTP, and the store to reload on SIGHUP (nil unless from files).
func (f *tlsFlags) config(fs *flag.FlagSet, out io.Writer) (*tls.Config, *certStore, error) {
	cfg, store, err := f.serverConfig(fs, out)
	if err != nil || *f.clientCA == "" {
		return cfg, store, err
	}
	if cfg == nil {
		return nil, nil, usagef(fs, "-tls-client-ca needs -tls-cert and -tls-key, or -tls-self-signed")
	}
	pool, err := readPool(*f.clientCA)
	if err != nil {
		return nil, nil, usagef(fs, "-tls-client-ca: %v", err)
	}
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return cfg, store, nil
}

// readPool returns the certificates of a PEM file as a pool.
func readPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// serverConfig is config without the client certificates.
func (f *tlsFlags) serverConfig(fs *flag.FlagSet, out io.Writer) (*tls.Config, *certStore, error) {
	files := *f.cert != "" || *f.key != ""
	switch {
	case files && *f.selfSigned:
		return nil, nil, usagef(fs, "-tls-self-signed and -tls-cert/-tls-key: choose one")
	case files && (*f.cert == "" || *f.key == ""):
		return nil, nil, usagef(fs, "-tls-cert and -tls-key go together")
	case files:
		s := &certStore{certFile: *f.cert, keyFile: *f.key}
		if err := s.load(); err != nil {
			return nil, nil, err
		}
		return &tls.Config{GetCertificate: s.get}, s, nil
	case *f.selfSigned:
		cert, err := selfSigned()
		if err != nil {
			return nil, nil, fmt.Errorf("making a self-signed certificate: %w", err)
		}
		fmt.Fprintf(out, "self-signed certificate, SHA-256 fingerprint %s\n", fingerprint(cert.Leaf))
		return &tls.Config{Certificates: []tls.Certificate{cert}}, nil, nil
	}
	return nil, nil, nil
}

// certStore holds the certificate loaded from files; GetCertificate reads
// it, so a reload changes what new handshakes get and nothing else.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// load reads the files; on an error the certificate in use stays.
// Safe from any goroutine.
func (s *certStore) load() error {
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("loading the certificate: %w", err)
	}
	s.cur.Store(&cert)
	return nil
}

// get is tls.Config.GetCertificate. Safe from any goroutine.
func (s *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cur.Load(), nil }

// reloadOnHUP reloads s on every SIGHUP and says so on out, until the
// returned function is called.
func reloadOnHUP(s *certStore, out io.Writer) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
				if err := s.load(); err != nil {
					fmt.Fprintf(out, "SIGHUP: %v; the certificate in use stays\n", err)
					continue
				}
				leaf, err := x509.ParseCertificate(s.cur.Load().Certificate[0])
				if err != nil {
					fmt.Fprintf(out, "SIGHUP: reloaded a certificate that does not parse: %v\n", err)
					continue
				}
				fmt.Fprintf(out, "SIGHUP: certificate reloaded, SHA-256 fingerprint %s\n", fingerprint(leaf))
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

// selfSigned makes an ECDSA P-256 certificate for localhost, 127.0.0.1
// and ::1, valid for a year.
func selfSigned() (tls.Certificate, error) {
	return selfsigned.New("loophttp self-signed", 365*24*time.Hour)
}

// fingerprint is the SHA-256 of a certificate, as openssl x509
// -fingerprint -sha256 prints it.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// clientTLSFlags are get's and load's TLS flags.
type clientTLSFlags struct {
	insecure *bool
	caFile   *string
	certFile *string
	keyFile  *string
}

// addClientTLSFlags adds -k, -cacert, -cert and -key to fs.
func addClientTLSFlags(fs *flag.FlagSet) *clientTLSFlags {
	return &clientTLSFlags{
		insecure: fs.Bool("k", false, "https: accept any certificate (as curl -k): for tests and local use only"),
		caFile:   fs.String("cacert", "", "https: trust the authorities in this PEM `FILE` instead of the system's (as curl --cacert)"),
		certFile: fs.String("cert", "", "https: present the client certificate (chain) in this PEM `FILE` to a server that asks (as curl --cert)"),
		keyFile:  fs.String("key", "", "https: the private key of -cert, a PEM `FILE` (as curl --key)"),
	}
}

// options returns the api's TLS options for the flags; nil when none is
// set (the system's roots, no client certificate).
func (f *clientTLSFlags) options(fs *flag.FlagSet) (*api.TLSOptions, error) {
	if !*f.insecure && *f.caFile == "" && *f.certFile == "" && *f.keyFile == "" {
		return nil, nil
	}
	o := &api.TLSOptions{InsecureSkipVerify: *f.insecure}
	if *f.caFile != "" {
		pool, err := readPool(*f.caFile)
		if err != nil {
			return nil, usagef(fs, "-cacert: %v", err)
		}
		o.RootCAs = pool
	}
	switch {
	case (*f.certFile == "") != (*f.keyFile == ""):
		return nil, usagef(fs, "-cert and -key go together")
	case *f.certFile != "":
		cert, err := tls.LoadX509KeyPair(*f.certFile, *f.keyFile)
		if err != nil {
			return nil, usagef(fs, "-cert and -key: %v", err)
		}
		o.Certificates = []tls.Certificate{cert}
	}
	return o, nil
}

// clientConfig is the TLS configuration of load's connections to addr:
// what get's api.TLSOptions say, for a tls.Config.
func clientConfig(o *api.TLSOptions, addr string) *tls.Config {
	host, _, _ := net.SplitHostPort(addr)
	cfg := &tls.Config{ServerName: host, NextProtos: []string{"http/1.1"}}
	if o != nil {
		cfg.RootCAs, cfg.InsecureSkipVerify, cfg.Certificates = o.RootCAs, o.InsecureSkipVerify, o.Certificates
	}
	return cfg
}
