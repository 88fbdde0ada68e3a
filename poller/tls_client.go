package poller

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// clientHandshake runs a client's TLS handshake over the dialed socket nc,
// on the dialing goroutine (Client.Dial connects on one already), bounded
// by timeout and ctx, and returns the layer to put on the connection once
// it is on a loop: from then on its records are read and written there.
// Bytes the server sent after its handshake (TLS 1.3 session tickets) stay
// in the tls.Conn and are read on the loop.
func clientHandshake(ctx context.Context, nc net.Conn, addr string, cfg *tls.Config, timeout time.Duration) (*tlsLayer, error) {
	cfg = clientConfig(cfg, addr)
	t := &tlsLayer{direct: nc, wake: make(chan struct{}, 1)}
	t.tc = tls.Client(t, cfg)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := t.tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	// HandshakeContext has stopped watching ctx: the socket is the loop's
	// from now on.
	t.direct = nil
	t.state = tlsOpen
	return t, nil
}

// clientConfig returns cfg with what a client needs filled in: the server
// name to verify (the host of addr) and ALPN's "http/1.1".
func clientConfig(cfg *tls.Config, addr string) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName != "" && len(cfg.NextProtos) > 0 {
		return cfg
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	return cfg
}

// TLS returns the connection's TLS state: false for a plain connection,
// or before its handshake is done. Loop only (see Conn.InEvent), while
// the connection is open.
func (c *Conn) TLS() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return c.tls.connectionState()
}

// IsTLS reports whether the connection is a TLS one (its handshake done
// or not). Loop only, while the connection is open.
func (c *Conn) IsTLS() bool { return c.tls != nil }
