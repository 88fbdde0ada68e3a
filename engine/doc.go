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
// output over the high-water mark has been written, and OnClose when the
// connection is gone. Each takes the current time, so tests run on a fake
// clock.
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
// close).
//
// # Threading and lifetimes
//
// Everything here runs on the connection's loop: no method is safe from
// another goroutine; the api layer hands such calls to the loop. The
// codec.Request passed to Handler.Request and the chunks passed to
// Handler.Body are borrowed: valid only during the call. A Stream is reused
// for every exchange of its connection; Gen tells exchanges apart.
package engine
