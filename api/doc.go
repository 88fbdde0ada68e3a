// Package api is loophttp's Node.js/IoT.js http facade: CreateServer,
// IncomingMessage, ServerResponse and Socket, and the client's Request,
// Get, ClientRequest and Agent, over the engine and poller layers, with
// Node's semantics where IoT.js is buggy or missing something (keep-alive,
// automatic framing, 1xx as interim, timeout 0 = off, every callback and
// event exactly once); the table below maps every IoT.js member and event
// to its Go name.
//
// # Threading
//
// Events run on the event loop of their connection, one at a time, like
// Node's callbacks: they must not block. Handlers that block set
// Options.Workers: the request handler and the request's events then run
// on that many worker goroutines, one exchange's callbacks still one at a
// time and in order (body chunks are copied for them, and the connection
// waits while they catch up). Register request and response
// listeners (OnData, OnEnd, OnFinish, …) from the request handler.
//
// The doc of every exported method of the server's types says from which
// goroutines it may be called and where the callbacks it takes or causes
// run, in these phrases:
//
//   - "Any goroutine": the method may be called from any goroutine, during
//     the callbacks of its exchange or after they returned. It never runs
//     a callback inside the call, and a call from another goroutine never
//     touches the loop's state: it reads and writes the handle's own
//     state under its lock, and what must reach the engine is carried out
//     on the loop, in order, as the callback in progress of the exchange
//     returns (so a Pause made in OnData, from the callback or from any
//     goroutine while it runs, takes effect before the next chunk), else
//     in a task posted to the loop.
//   - "Callbacks' goroutine": call it only from the goroutine running the
//     exchange's callbacks (the loop, or the exchange's worker), during
//     one of them.
//   - "Callbacks on the loop": the callbacks run on the connection's event
//     loop, or with Options.Workers on the exchange's worker, one at a
//     time, never on a goroutine of their own while the loop runs. A
//     callback owed by a connection that is over (the ErrConnectionGone of
//     a late End, a listener added after 'close') runs in a task of the
//     loop that served it, or with Options.Workers on the exchange's
//     worker; once the server has stopped, on the server's event
//     goroutine (below; a task the loop had no time for runs there when
//     the server has finished stopping). Such a callback is never lost
//     and runs once. On the client, a request's callbacks run on its
//     connection's loop; those of a request with no connection to run
//     them (Abort or Destroy before it connected, a failed connect,
//     Agent.Destroy, a listener added after 'close') run on its agent's
//     runner, one goroutine that lives while it has work and runs them in
//     order; a listener added to a client connection's Socket after its
//     'close' runs on one such runner shared by the client connections.
//
// A handler may so hand the response to a goroutine or a timer and finish
// it later. A call for a connection that has gone fails with
// ErrConnectionGone (its callback gets the error); it never writes to
// another connection. A panic in a callback is recovered and logged with
// its stack (one Error record, "loophttp: … panicked"); it costs the
// connection (a handler's: a 500 if the head had not gone out), never the
// server. The server's own events have no connection: 'listening',
// 'error', 'close' and Close's callback run on the server's event
// goroutine, one goroutine that lives while it has work and runs them in
// the order they came, never inside the call that caused them (Listen
// returns before its 'listening' or 'error' runs, as Node emits them on a
// later tick). Like a loop, it must not be blocked by a callback.
//
// # Events a late listener cannot miss
//
// The events that fire once are delivered to a listener added after they
// fired, at once, as a resolved promise calls a late then: a Server's
// 'close' (OnClose, on the server's event goroutine), an
// IncomingMessage's 'end', 'error' and 'close' (OnEnd, OnError, OnClose),
// the response's 'finish' and 'close'
// (ServerResponse.OnFinish, OnClose), a ClientRequest's 'socket',
// 'finish', 'error', 'close' and 'abort', and a Socket's 'error' and
// 'close' (Socket.OnError, OnClose). Such a listener never runs inside
// the call that adds it, nor beside another callback of its exchange:
// while the exchange lasts it runs on the loop right after the callback in
// progress (or in a task of the loop), on the exchange's worker with
// Options.Workers; once the exchange is over (its 'close' delivered) its
// connection may be gone or serving another request, and nothing else of
// the exchange runs, so it runs in a task of the loop that served it (a
// Socket's, once its close listeners have run), as "Callbacks on the loop"
// says. An event that
// did not fire and never will ('finish' of a response cut short, 'error'
// of a request that succeeded) is not delivered. The other events ('data',
// 'drain', 'timeout', 'response', …) reach only the listeners registered
// when they fire. One exception: a server request's 'error' is not kept
// once its exchange is over and its state has gone to a later request, so
// an OnError added then hears nothing.
//
// # Framing
//
// A response sends a Content-Length the handler set as it is, and checks
// the body against it: a Write past it, or an End short of it or past it,
// reports ErrContentLengthMismatch (Node's
// ERR_HTTP_CONTENT_LENGTH_MISMATCH), ends the response without 'finish'
// and closes the connection once what was sent before has gone out, so
// the peer sees a short body, never one it waits for. A Date the handler
// sets replaces the automatic one. WriteHead keeps the last of a
// single-valued field given twice. A client sends RequestOptions.HeaderList
// fields as given, a name as often as it appears.
//
// # Buffers
//
// The request head is copied once into memory never written again: its
// strings stay valid as long as they are held. Body chunks passed to
// OnData are borrowed, valid only during the call; bytes.Clone keeps one.
// Data given to Write and End is copied; the caller may reuse it at once.
// A request allocates one object: its IncomingMessage and ServerResponse
// with its raw header list (240, 320, 480 or 768 bytes, for up to 1, 3, 8
// or 16 fields). The copy of the head is cut from 4 KiB chunks each event
// loop allocates in turn (a head over 1 KiB has its own), tens of
// requests to a chunk; the rest of an exchange's state is pooled for later requests, so
// a response used after its exchange is over reports ErrConnectionGone
// rather than acting on another. An idle connection holds its Socket and
// the engine's and poller's small per-connection state, nothing of its
// last exchange.
//
// Options.ReuseMessages removes that one allocation, on fasthttp's terms:
// the IncomingMessage, the ServerResponse and the head's copy (896 bytes,
// kept with the pooled exchange state, not by idle connections) are reused
// for later requests, so code must not keep them, or
// strings from them, past the exchange's 'close'. A handler that answers
// later (a timer, another goroutine) calls ServerResponse.Retain first,
// which keeps that request's objects out of reuse. `loophttp serve` runs
// with it.
//
// # Counters and the access log
//
// Server.Stats returns the server's counters (connections open, accepted
// and paused, requests, responses by status class, protocol errors and
// timeouts by kind, bytes in and out). They are always on: each event loop
// counts with plain increments and Stats sums the loops' copies.
// Options.AccessLog, when set, gets one slog line per request (method,
// target, status, body bytes, duration) when its exchange ends.
//
// # IoT.js members and events, and their Go names
//
//	IoT.js / Node                       loophttp
//	----------------------------------  ------------------------------------------------
//	http.createServer([opts], fn)       CreateServer(fn, *Options)
//	server.listen(port, host, backlog,  Server.Listen(port, host, backlog, cb) error
//	  cb)                                 (host "" = 0.0.0.0, backlog 0 = 511, port 0 = any)
//	server.address()                    Server.Address() *Address
//	server.close([cb])                  Server.Close(cb func(error))   (graceful, on Shutdown)
//	server.closeIdleConnections()       Server.CloseIdleConnections()  (Node 18)
//	server.closeAllConnections()        Server.CloseAllConnections()   (Node 18)
//	(Go's http.Server.Shutdown)         Server.Shutdown(ctx) error
//	server.setTimeout(ms, cb)           Server.SetTimeout(d, cb)   (0 = off)
//	server.timeout                      Server.Timeout()           (default 2 min)
//	'request' (req, res)                Server.OnRequest
//	'connection' (socket)               Server.OnConnection
//	'close'                             Server.OnClose
//	'listening'                         Server.OnListening
//	'error' (err)                       Server.OnError
//	'clientError' (err, socket)         Server.OnClientError (malformed input, answered 4xx/5xx)
//	'timeout' (socket)                  Server.OnTimeout
//	'checkContinue' (req, res)          Server.OnCheckContinue
//	'upgrade' (req, socket, head)       Server.OnUpgrade (the socket becomes a byte pipe)
//	'connect' (req, socket, head)       Server.OnConnect
//	'secureConnection' (socket)         Server.OnSecureConnection (https: the handshake is done)
//	'tlsClientError' (err, socket)      Server.OnTLSClientError   (https: the handshake failed)
//
//	req.method, req.url                 IncomingMessage.Method, URL
//	req.httpVersion                     IncomingMessage.HTTPVersion ("1.1"; "1.2" as received)
//	req.headers                         IncomingMessage.Headers() (lower-case, Node joins)
//	req.rawHeaders                      IncomingMessage.RawHeaders
//	(case-insensitive lookup)           IncomingMessage.Header(name), HeaderValues(name)
//	req.trailers / rawTrailers          IncomingMessage.Trailer(name), RawTrailers
//	req.socket, req.complete            IncomingMessage.Socket, Complete
//	req.setTimeout(ms, cb)              IncomingMessage.SetTimeout(d, cb)
//	req.pause(), req.resume()           IncomingMessage.Pause(), Resume()
//	'data', 'end', 'close', 'timeout'   IncomingMessage.OnData, OnEnd, OnClose, OnTimeout
//	'error' (a body over the limit)     IncomingMessage.OnError (*BodyLimitError, then close)
//
//	res.statusCode, res.statusMessage   ServerResponse.StatusCode, StatusMessage
//	res.writeHead(code, msg, headers)   ServerResponse.WriteHead(code, msg, headers...)
//	res.setHeader/getHeader/            ServerResponse.SetHeader (SetHeaderValues),
//	  removeHeader/hasHeader/getHeaders   GetHeader, RemoveHeader, HasHeader, GetHeaders
//	res.headersSent                     ServerResponse.HeadersSent()
//	res.write(data, cb)                 ServerResponse.Write(data, cb) bool
//	res.end(data, cb)                   ServerResponse.End(data, cb) error
//	res.writeContinue()                 ServerResponse.WriteContinue()
//	res.writeProcessing/early hints     ServerResponse.WriteInformation(code, headers...)
//	res.addTrailers(headers)            ServerResponse.AddTrailers(headers...)
//	res.setTimeout(ms, cb)              ServerResponse.SetTimeout(d, cb)
//	res.socket                          ServerResponse.Socket()
//	'finish', 'close', 'drain',         ServerResponse.OnFinish, OnClose, OnDrain,
//	  'timeout'                           OnTimeout
//
//	socket.remoteAddress/remotePort     Socket.RemoteAddress(), RemotePort()
//	socket.localAddress/localPort       Socket.LocalAddress(), LocalPort()
//	socket.setTimeout(ms, cb)           Socket.SetTimeout(d, cb)
//	socket.setNoDelay, setKeepAlive     Socket.SetNoDelay, SetKeepAlive (accepted; NODELAY is always on)
//	socket.end(), socket.destroy()      Socket.End(), Destroy()
//	'close', 'timeout'                  Socket.OnClose, OnTimeout
//	'error'                             Socket.OnError (before 'close')
//	socket.write(data), 'data'          Socket.Write, Socket.OnData (upgraded sockets)
//
//	https.createServer({cert, key, ...}) CreateServer(handler, &Options{TLS: *tls.Config})
//	tlsSocket.encrypted, getProtocol(), Socket.TLS() (*tls.ConnectionState, nil when plain):
//	  getCipher(), servername,            Version, CipherSuite, ServerName,
//	  alpnProtocol, getPeerCertificate()  NegotiatedProtocol, PeerCertificates
//	https.request(options, cb)          Request(RequestOptions{Protocol: "https:", TLS: &TLSOptions{...}}, cb)
//	options ca, servername,             TLSOptions.RootCAs, ServerName,
//	  rejectUnauthorized: false           InsecureSkipVerify (or TLSOptions.Config)
//
//	http.request(options, cb)           Request(RequestOptions, cb) (*ClientRequest, error)
//	http.request(url, options, cb)      RequestURL(url, RequestOptions, cb)
//	http.get(options, cb)               Get(RequestOptions, cb); GetURL(url, cb)
//	options host/hostname/port/method/  RequestOptions.Host (default localhost), Hostname,
//	  path/headers/agent/timeout          Port (80), Method (GET), Path (/), Headers, Agent, Timeout
//	headers with array values           RequestOptions.HeaderList (in order, names may repeat)
//	req.write(data, cb)                 ClientRequest.Write(data, cb) bool (streams, chunked)
//	req.end(data, cb)                   ClientRequest.End(data, cb) error (a second End is a no-op)
//	req.setHeader/getHeader/            ClientRequest.SetHeader, GetHeader, RemoveHeader
//	  removeHeader                        (until the head is sent)
//	req.setTimeout(ms, cb)              ClientRequest.SetTimeout(d, cb) (idle timer, ends with the response)
//	req.abort(), req.destroy(err)       ClientRequest.Abort(), Destroy(err)
//	req.method, req.path, req.host      ClientRequest.Method, Path, Host
//	'socket' (socket)                   ClientRequest.OnSocket (exactly once per request)
//	'response' (res)                    ClientRequest.OnResponse (and Request's cb)
//	'information', 'continue'           ClientRequest.OnInformation, OnContinue (1xx are interim)
//	'finish', 'error', 'close'          ClientRequest.OnFinish, OnError, OnClose (each once)
//	'timeout', 'drain', 'abort'         ClientRequest.OnTimeout, OnDrain, OnAbort
//	res.statusCode, res.statusMessage   IncomingMessage.StatusCode, StatusMessage
//	res.httpVersion, res.headers,       IncomingMessage.HTTPVersion, Headers(), RawHeaders,
//	  res.rawHeaders, res.trailers        Header(name), Trailer(name), RawTrailers
//	res 'data', 'end', 'close'          IncomingMessage.OnData, OnEnd, OnClose
//	res.setTimeout(ms, cb)              IncomingMessage.SetTimeout(d, cb) (the request's idle timer)
//	res 'error' / 'aborted'             IncomingMessage.OnError (ErrResponseAborted)
//	http.Agent({keepAlive, maxSockets,  NewAgent(AgentOptions{DisableKeepAlive, MaxSockets,
//	  maxFreeSockets, timeout})           MaxFreeSockets, FreeTimeout}); DefaultAgent; Agent.Destroy()
//
// # The client
//
// A ClientRequest sends nothing until Write or End: register listeners
// first. Its methods are safe from any goroutine; its events run on the
// loop of its connection (or, for a request that never got one, on the
// goroutine that failed it) and never concurrently. Every request hears
// OnSocket once when it gets a connection, and OnClose once at the end;
// a failure reaches OnError once before OnClose: a refused connection or
// a DNS failure (the net error), ErrSocketHangUp (closed before a complete
// response head), ErrResponseAborted (closed inside the body), a
// *BodyLimitError (a body over AgentOptions.Limits.MaxBodySize, which is
// unset by default), a *ParseError carrying the codec's error kind,
// ErrSocketDestroyed,
// ErrDestroyed, engine.ErrHandlerPanic (a callback panicked: it is logged
// and the request destroyed). Interim 1xx responses go to OnInformation
// (100 also to OnContinue); the final one to OnResponse. HEAD, 204 and 304
// responses have no body; bytes that answer no request close the
// connection.
//
// An https:// request (or Protocol "https:") goes over TLS: the handshake
// runs on the dialing goroutine, its failure (a certificate that does not
// verify) is the request's one error, and the records are then read and
// written on the connection's loop. The Agent pools https connections
// apart from plain ones, by host, port and TLS settings.
//
// An Agent keeps idle connections per host:port (keep-alive, LIFO) within
// MaxFreeSockets and FreeTimeout, opens at most MaxSockets per host:port
// and queues requests beyond it in order. A connection the server closed
// leaves the pool when the loop sees the close and is never used after.
// When a kept connection turns out to be closed as a request goes out (no
// byte of response, the server's close crossing the request), the request
// is sent again on a new connection only if its method is idempotent and
// it was ended before it got the connection (so all of it is known); else
// it fails with ErrSocketHangUp.
package api
