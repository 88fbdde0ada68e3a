// Package poller runs loophttp's engine on gnet: it is the only package that
// imports gnet. A Server listens, spreads connections over event loops
// (one goroutine each, locked to its OS thread and optionally pinned to a
// CPU), and drives an engine.ServerConn per connection.
//
// # Events
//
// OnOpen takes a Conn from the loop's pool and opens its ServerConn;
// OnTraffic hands the engine everything gnet has buffered (without
// copying) and writes what the engine produced with one write; OnClose
// (for a close from either side, EOF included) lets the engine answer what
// is complete, ends the exchange and returns the Conn to the pool.
//
// # Timers
//
// Each loop owns a hashed timing wheel (wheel.go): arming, moving and
// stopping a connection's one timer are O(1) with no allocation and no
// lock. gnet runs OnTick on a goroutine of its own, so OnTick only posts a
// tick task to every loop (EventLoop.Execute); the task advances the wheel
// and polls the connections waiting for their output to drain.
//
// # Threading
//
// Everything about a connection happens on its loop. The one exception is
// Conn.Submit, safe from any goroutine: it runs a function on the
// connection's loop if the connection of the given generation (Conn.Gen)
// is still open, so a late call for a closed or reused connection is a
// harmless ErrConnGone, never a write to someone else's socket.
//
// # Memory
//
// An idle keep-alive connection holds its Conn (96 bytes; a loop allocates
// them in blocks of 32 and pools them), its engine.ServerConn (96 bytes)
// and gnet's own state: the output buffer belongs to the loop (every event
// flushes before the loop turns to another connection), and the Stream of
// an exchange, with its field buffer and chunked decoder, returns to the
// engine's loop pools when the exchange ends.
//
// # Logging
//
// gnet's logger is routed into log/slog (Config.Logger).
package poller
