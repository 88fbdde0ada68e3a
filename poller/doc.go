// Package poller runs loophttp's engine on gnet: it is the only package that
// imports gnet. A Server listens, spreads connections over event loops
// (one goroutine each, optionally locked to an OS thread pinned to a CPU;
// identity.go), and drives an engine.ServerConn per connection.
//
// # Events
//
// OnOpen takes a Conn from the loop's pool and opens its ServerConn;
// OnTraffic hands the engine everything gnet has buffered (without
// copying) and writes what the engine produced with one write; OnClose
// (for a close from either side, EOF included) lets the engine answer what
// is complete, ends the exchange and returns the Conn to the pool.
//
// # Reading, writing, closing
//
// A connection is read only while its state machine wants input
// (engine.ServerConn.WantsInput): not while a request is being handled
// with more input behind it, a body is paused, output is over the
// high-water mark or still waiting for the socket. Otherwise the poller
// registers the socket for no events in gnet's epoll set (interest.go), so
// the kernel holds the input and TCP flow control holds the peer, and a
// FIN is not read (gnet closes on it) while answers are owed: a
// half-closed peer gets them all.
//
// The poller writes to the socket itself (output.go): what the kernel does
// not take waits in the connection's pending buffer, and a watcher
// goroutine (watcher.go) posts the next write to the loop when the socket
// is writable again, which the engine hears as OnDrain. A close that
// follows a response waits for that output; a shut of the write side
// happens once it has all gone. Timers keep running meanwhile: the idle
// timeout counts write progress as activity, and the keep-alive timeout
// starts once the output has drained.
//
// # TLS
//
// With Config.TLS (and on a client connection made with DialTLS) a TLS
// layer sits between the socket and the state machine, which never knows
// (tls.go): ciphertext gnet read is decrypted on the loop into a pooled
// plaintext buffer that Input returns; the plaintext an event wrote is
// encrypted when it flushes and the ciphertext takes the output path
// above, so pausing, backpressure, the drain before a close and the
// lingering close hold as for plain TCP, and a close sends close_notify
// first. crypto/tls runs over an in-memory transport: the record layer on
// the loop (a Read with nothing buffered returns a Temporary error, which
// crypto/tls does not keep), the handshake, which cannot be resumed, on a
// goroutine of its own started once the client's hello is in, at most
// Config.MaxHandshakes at once, within Config.HandshakeTimeout
// (tls_handshake.go). A plain HTTP request to a TLS port gets 400
// (tls_plain.go).
//
// # Stopping
//
// Server.Shutdown closes the listening sockets at once (listener.go: gnet
// has no call for it, so its descriptor is pointed at a socket that
// accepts nothing, what the kernel had queued is accepted and served, and
// the socket is shut down), makes every request taken from then on the
// last of its connection (engine.Loop.Drain), and sweeps the connections
// every tick: idle ones close once idle for a moment, the others after
// their response in progress. It returns when none is left, closes what is
// left when its context ends, and stops gnet's engine without waiting on
// gnet's own 500 ms poll.
//
// # Timers
//
// Each loop owns a hashed timing wheel (wheel.go): arming, moving and
// stopping a connection's one timer are O(1) with no allocation and no
// lock. gnet runs OnTick on a goroutine of its own, so OnTick only posts a
// tick task to every loop (EventLoop.Execute); the task advances the wheel.
//
// # Threading
//
// Everything about a connection happens on its loop. The one exception is
// Conn.Submit, safe from any goroutine: it runs a function on the
// connection's loop if the connection of the given generation (Conn.Gen)
// is still open, so a late call for a closed or reused connection is a
// harmless ErrConnGone, never a write to someone else's socket.
// Conn.InEvent tells exactly whether a call runs inside one of the
// connection's events: a loop is told by its goroutine (CallerID,
// identity.go), as server loops are not locked to OS threads unless
// pinned.
//
// # Memory
//
// An idle keep-alive connection holds its Conn (112 bytes; a loop allocates
// them in blocks of 36 and pools them), its engine.ServerConn (96 bytes)
// and gnet's own state: the output buffer belongs to the loop (every event
// flushes before the loop turns to another connection), and the Stream of
// an exchange, with its field buffer and chunked decoder, returns to the
// engine's loop pools when the exchange ends.
//
// # Counters
//
// Each loop counts what its connections do (stats.go): connections
// opened and closed, bytes read and written, connections whose reading
// is off, besides the engine's counters (engine.Stats). The loop updates
// them with plain increments, with no lock and no atomic; Server.Stats
// posts a task to every loop to copy them there and sums the copies.
//
// # Logging
//
// gnet's logger is routed into log/slog (Config.Logger).
package poller
