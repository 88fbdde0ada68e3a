package api

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
)

// HTTPS. A server with Options.TLS terminates TLS on its event loops
// (poller's TLS layer): handlers see plain requests, and Socket.TLS tells
// them what was negotiated, as Node's TLSSocket does. A request with
// Protocol "https:" (or an https:// URL) goes over TLS; the agent pools
// its connections apart from plain ones, by scheme, host, port and TLS
// settings.

// TLS returns the connection's TLS state (Node's TLSSocket: encrypted is
// a non-nil state, getProtocol is Version, getCipher CipherSuite,
// servername ServerName, alpnProtocol NegotiatedProtocol,
// getPeerCertificate PeerCertificates; tls.VersionName and
// tls.CipherSuiteName name the numbers), or nil for a plain connection,
// one whose handshake is not done (a TLS server's OnConnection fires at
// the TCP connect, before it; its requests come after), and one that has
// closed. Any goroutine: it reads a copy the loop took when the handshake
// was done (by a client's connection when it opened, by a server's at its
// first request), never the loop's state, and never waits.
func (s *Socket) TLS() *tls.ConnectionState {
	e := s.extra.Load()
	if e == nil || s.closed.Load() {
		return nil
	}
	return e.tls.Load()
}

// noteTLS takes the copy TLS returns, once the handshake is done, while
// the socket is open. Loop only.
func (s *Socket) noteTLS() {
	if !s.pc.IsTLS() || s.closed.Load() {
		return
	}
	if e := s.extra.Load(); e != nil && e.tls.Load() != nil {
		return
	}
	if st, ok := s.pc.TLS(); ok {
		s.more().tls.Store(&st)
	}
}

// TLSOptions are the TLS settings of an https request (Node's https.request
// options ca, cert and key, servername and rejectUnauthorized). The zero
// value verifies the server's certificate against the system's roots, for
// the host requested, and presents no certificate of its own.
type TLSOptions struct {
	// RootCAs are the authorities trusted (Node's ca); nil means the
	// system's.
	RootCAs *x509.CertPool
	// ServerName is the name sent (SNI) and verified; default the host.
	ServerName string
	// InsecureSkipVerify accepts any certificate (curl -k, Node's
	// rejectUnauthorized: false): for tests and local use only.
	InsecureSkipVerify bool
	// Certificates are the client's own certificate chains with their
	// keys (Node's cert and key, curl --cert and --key; tls.LoadX509KeyPair
	// reads them from PEM files), presented to a server that asks for
	// one. The agent keeps connections made with different Certificates
	// (different slices) apart.
	Certificates []tls.Certificate
	// Config, when set, is used as it is (its ServerName defaulting to the
	// host) and the fields above are ignored.
	Config *tls.Config
}

// clientTLS is what an https request carries to its agent: the key of its
// connection pool and how to make the pool's TLS configuration.
type clientTLS struct {
	key  string // scheme, address and TLS settings: requests that may share connections
	host string
	opts TLSOptions
}

// newClientTLS returns the TLS part of an https request to addr (host is
// the name or address requested).
func newClientTLS(addr, host string, o *TLSOptions) *clientTLS {
	ct := &clientTLS{host: host}
	if o != nil {
		ct.opts = *o
	}
	ct.key = "https://" + addr + "|" + ct.opts.ServerName + "|" + strconv.FormatBool(ct.opts.InsecureSkipVerify) +
		fmt.Sprintf("|%p|%p|%p", ct.opts.RootCAs, ct.opts.Config, ct.opts.Certificates)
	return ct
}

// config returns the TLS configuration of the request's pool.
func (ct *clientTLS) config() *tls.Config {
	if c := ct.opts.Config; c != nil {
		if c.ServerName != "" {
			return c
		}
		c = c.Clone()
		c.ServerName = ct.host
		return c
	}
	name := ct.opts.ServerName
	if name == "" {
		name = ct.host
	}
	return &tls.Config{
		RootCAs:            ct.opts.RootCAs,
		ServerName:         name,
		InsecureSkipVerify: ct.opts.InsecureSkipVerify,
		Certificates:       ct.opts.Certificates,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
}

// httpsHost turns the Host header's value made for http (with the port
// unless it is 80) into https's (with the port unless it is 443).
func httpsHost(h string, port int) string {
	switch port {
	case 443:
		return strings.TrimSuffix(h, ":443")
	case 80:
		return h + ":80"
	}
	return h
}

// isHTTPS reports whether a Protocol option asks for TLS.
func isHTTPS(protocol string) bool {
	return strings.EqualFold(strings.TrimSuffix(protocol, ":"), "https")
}
