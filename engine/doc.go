// Package engine holds loophttp's sans-I/O connection state machines: it
// turns the bytes of a connection into requests for a Handler and the
// Handler's answers into framed responses, without touching a socket, a
// goroutine or the wall clock.
//
// # Driving a connection
//
// A transport (package poller over gnet; tests over an in-memory fake)
// implements Conn and calls a ServerConn's methods on the connection's
// loop: Open once, OnData when input arrives, OnEOF when the peer
// half-closes, OnTimer when the deadline it was given passes, OnDrain when
// output that waited for the socket has been written, and OnClose when the
// connection is gone. Each takes the current time, so tests run on a fake
// clock. After each call the transport asks WantsInput and reads the
// socket only while it reports true (the engine's backpressure: a paused
// body, output over HighWater or still waiting for the socket, an exchange
// in progress with the next request behind it).
//
// # Closing
//
// A connection the server closes after a response, or for a protocol
// error, closes in stages (RFC 9112 §9.6): its output drains first (a
// peer that reads slowly keeps it, bounded by the idle timeout counted on
// write progress), then the write side is shut and input is read and
// dropped until the peer closes, CloseDrainTimeout passes without input,
// or LingerTime in all. An idle connection with nothing unread closes at
// once; after the peer's end of file the connection closes as soon as its
// output has drained; a peer that does not read for IdleTimeout, or sends
// more than MaxUnread the engine is not reading, is closed at once.
//
// # One request at a time
//
// A connection holds one exchange (a Stream) at a time. The next pipelined
// request is parsed only after the current response has ended and its
// request body has been read, so responses leave in request order;
// synchronous handlers still answer a whole pipelined batch inside one
// OnData, and the transport flushes it with one write.
//
// # Framing and errors
//
// The engine frames responses (Content-Length when End knows the length,
// chunked on HTTP/1.1 otherwise, close-delimited on HTTP/1.0; no body for
// HEAD, 204 and 304; Date from codec.DateCache; Connection: close when the
// connection will close), answers codec errors with their status and a
// staged close, answers Expect: 100-continue, discards a bounded unread
// body, bounds unread input, keeps the headers, keep-alive and idle
// timeouts, and recovers handler panics (500 if the head is not out, then
// close). A CONNECT the handler answers without Tunnel or Detach closes the
// connection after its answer, and so does an Upgrade answered as an
// ordinary request when bytes followed it before the answer ended: bytes
// sent for a tunnel or a new protocol are never parsed as requests.
//
// # The client side
//
// A ClientConn is the client's state machine over the same Conn: Begin
// starts an exchange (request line, then AddField), Write streams the body
// (chunked unless a Content-Length was set), End finishes it (framed by
// its length when the head goes out with it; no body header for a bare
// GET), and a ClientHandler hears the response: Information for each 1xx,
// Response, Body, End with trailers, and Close exactly once, with nil or
// why the response is missing (ErrHangUp before a complete head,
// ErrTruncated inside the body, a codec.Error for a response that breaks
// RFC 9112). HEAD, 204 and 304 responses carry no body; a 101 or a 2xx to
// CONNECT turns the connection into a byte stream. When both sides keep the
// connection and the request went out whole, ClientOwner.Idle offers it for
// the next exchange; bytes nobody asked for close it. Begin on a busy
// connection pipelines the request behind ones already sent whole
// (responses are matched in order; a close fails the ones behind with
// ErrHangUp). An exchange takes at most ClientConfig.MaxInterim 1xx
// responses (ErrTooManyInterim past them). ClientConn.WantsInput tells the
// transport when to stop reading the socket: while a response body is
// paused, after the server's EOF, once closed. The server's half-close
// (OnEOF) is not a close: the responses already buffered are read (a
// paused one when it is resumed), then the engine closes the connection.
//
// # Errors
//
// errors.go holds the closed set of error kinds (ErrClosed, ErrTimeout,
// ErrInvalid, ErrState, ErrLimit, ErrCanceled, ErrPanic). Every error value
// of engine, poller and api wraps exactly one (NewError), so a caller asks
// errors.Is(err, engine.ErrClosed) in any layer. Peer protocol errors are
// codec.Error values and system errors are wrapped as they come.
//
// # Counters
//
// A Loop counts the requests, responses (by status class), protocol errors
// (by codec.Error kind) and timeouts (by kind) of its server connections
// in a Stats, with plain increments: it is the loop's, read on the loop
// (Loop.Stats).
//
// # Threading and lifetimes
//
// Everything here runs on the connection's loop: no method is safe from
// another goroutine; the api layer hands such calls to the loop. The
// codec.Request passed to Handler.Request and the chunks passed to
// Handler.Body are borrowed: valid only during the call. A Stream serves one
// exchange: it comes from the loop's pool when the request arrives and goes
// back after Handler.Close, so an idle connection holds none; Gen tells the
// exchanges of a connection apart. A tunnel's Stream (Detach, Tunnel) is
// the exception: its handler keeps it for the connection's life, so it is
// never reused, and calls through it after the close are refused.
package engine
