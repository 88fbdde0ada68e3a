package api

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/poller"
)

// serverHandler connects a Server to the runtime: it is the engine.Handler
// of every connection and the poller's connection hooks. All its methods
// run on the loop of the connection concerned.
type serverHandler struct {
	srv *Server
}

// exchange is the state of one request/response pair. With handlers on
// the loop, exchanges are pooled (an idle connection holds none), so the
// only object allocated per request is the message; every call through a
// stale IncomingMessage or ServerResponse is refused by generation (xgen).
// Its fields are owned by the connection's loop, except the states, which
// guard themselves.
type exchange struct {
	msg    *message // what the user holds of this request and its response
	reqSt  msgState
	resSt  resState
	sock   *Socket
	stream *engine.Stream
	gen    uint32 // the connection generation it belongs to
	xgen   uint32 // the request it serves, counted per exchange object

	cbG          atomic.Uintptr  // the goroutine (poller.CallerID) running a callback of this exchange on the loop; 0 between callbacks
	work         serial          // callbacks queued for the worker pool (Options.Workers)
	paused       bool            // the loop paused the body while workers catch up (loop only)
	done         bool            // Handler.Close has been called
	closePending bool            // Close came while the response was being applied
	pins         int             // api frames on the loop's stack using the exchange
	start        int64           // when the request arrived (Unix ns), with Options.AccessLog
	limit        *BodyLimitError // a body limit cut the request short: what 'close' brings 'error' with (set by Handler.Close)

	own atomic.Pointer[reusedMessage] // the message reused for each request (Options.ReuseMessages), until retained
}

// message is what one request allocates: the request and the response as
// the user sees them and (in the types that embed it) inline storage for
// the raw header list, so that a typical request allocates nothing else.
// None of it is ever written for another request, so the strings stay
// valid as long as the user keeps them, unless Options.ReuseMessages
// makes a reusedMessage the exchange's own, rewritten for each request.
// The bytes the strings view come from the loop's headArena.
type message struct {
	req IncomingMessage
	res ServerResponse
}

// The messages by the number of raw header strings they hold inline, each
// filling its allocation size class (a test pins the sizes): a request
// takes the smallest that holds its list. A list too long even for the
// largest is allocated on its own (IncomingMessage.init).
type (
	message1 struct {
		message
		raw [2]string
	}
	message3 struct {
		message
		raw [6]string
	}
	message8 struct {
		message
		raw [16]string
	}
	message16 struct {
		message
		raw [32]string
	}
	// reusedMessage is the exchange's own message under
	// Options.ReuseMessages, with room for the head's copy.
	reusedMessage struct {
		message
		raw  [16]string
		head [304]byte
	}
)

// newMessage allocates the message of a request whose raw header list has
// n strings, and returns it with its inline storage for the list.
func newMessage(n int) (msg *message, raw []string) {
	switch {
	case n <= 2:
		m := new(message1)
		return &m.message, m.raw[:]
	case n <= 6:
		m := new(message3)
		return &m.message, m.raw[:]
	case n <= 16:
		m := new(message8)
		return &m.message, m.raw[:]
	}
	m := new(message16)
	return &m.message, m.raw[:]
}

// headArena is a loop's supply of bytes for the copies of request heads:
// chunks handed out in order, each byte once, so the strings viewing them
// never change while the user holds them; a chunk is garbage once no
// string points into it. Sharing one per loop (not per exchange) keeps
// the memory of requests held for long to their own bytes plus one
// chunk. Loop only.
type headArena struct {
	free []byte
}

// arenaChunk is the size of a headArena's chunks: a typical head takes
// 100 to 400 bytes, so one allocation serves tens of requests.
const arenaChunk = 4096

// take returns n bytes never handed out before.
func (a *headArena) take(n int) []byte {
	if n > len(a.free) {
		if n > arenaChunk/4 {
			return make([]byte, n) // a large head: its own allocation
		}
		a.free = make([]byte, arenaChunk)
	}
	b := a.free[:n:n]
	a.free = a.free[n:]
	return b
}

// loopState is what the api keeps per event loop, in the engine loop's
// Data: the arena of request heads, and the exchanges retired on the loop
// for its next requests (only servers whose handlers run on the loop reuse
// them: worker callbacks may outlive an exchange's close, so those are
// left to the garbage collector). Loop only.
type loopState struct {
	arena headArena
	free  []*exchange // at most maxFree
}

// maxFree bounds the exchanges a loop keeps between requests: a burst of
// requests in progress at once leaves the rest to the garbage collector.
const maxFree = 64

// stateOf returns the api's state of the loop st runs on. Loop only.
func stateOf(st *engine.Stream) *loopState {
	l := st.Loop()
	ls, ok := l.Data.(*loopState)
	if !ok {
		ls = new(loopState)
		l.Data = ls
	}
	return ls
}

// arenaOf returns the head arena of the loop st runs on. Loop only.
func arenaOf(st *engine.Stream) *headArena { return &stateOf(st).arena }

// nextExchange returns an exchange for a new request of the socket: one
// the loop retired, or a new one. Loop only.
func (s *Socket) nextExchange(st *engine.Stream) *exchange {
	var ex *exchange
	if ls := stateOf(st); s.srv.pool == nil && len(ls.free) > 0 {
		n := len(ls.free) - 1
		ex, ls.free[n] = ls.free[n], nil
		ls.free = ls.free[:n]
	} else {
		ex = new(exchange)
	}
	ex.xgen = nextGen(ex.xgen)
	ex.sock, ex.stream, ex.gen = s, st, s.gen
	ex.paused, ex.done, ex.closePending, ex.pins, ex.limit = false, false, false, 0, nil
	if ex.resSt.ex == nil { // new; a pooled one was cleared when retired
		ex.reqSt.clear(ex)
		ex.resSt.clear(ex)
	}
	ex.resSt.highWater = s.srv.highWater
	ex.reqSt.gen.open(ex.xgen)
	ex.resSt.gen.open(ex.xgen)
	return ex
}

// generation is the exchange generation a state (msgState, resState)
// serves: the exchange's now; once retired, its next (nextGen), which no
// handle has yet; 0 before the first. Written on the loop only.
type generation struct{ atomic.Uint32 }

// open lets the state serve the exchange of generation g. The state must
// be clear: new, or retired (which set g already). It takes no lock: no
// handle passes the generation check before the store, and the handles
// that do are made after it, on the loop.
func (gen *generation) open(g uint32) {
	if gen.Load() != g {
		gen.Store(g)
	}
}

// nextGen returns the exchange generation after g. Generations skip 0,
// which marks a state that has served no exchange yet.
func nextGen(g uint32) uint32 {
	if g++; g == 0 {
		return 1
	}
	return g
}

// pin marks an api frame on the loop's stack that uses ex; unpin ends it
// and gives ex back to its loop once it is over and nothing uses it. Loop
// only.
func (ex *exchange) pin() { ex.pins++ }

func (ex *exchange) unpin() {
	ex.pins--
	if ex.pins > 0 || !ex.done || ex.closePending || ex.resSt.applying || ex.sock.srv.pool != nil {
		return
	}
	if ex.sock.x().upgraded != nil {
		return // the socket is a byte pipe: leave it be
	}
	// From here on every handle of the exchange is stale.
	ex.reqSt.retire()
	late := ex.resSt.retire()
	ls := stateOf(ex.stream)
	ex.msg, ex.stream, ex.sock = nil, nil, nil
	if len(ls.free) < maxFree {
		ls.free = append(ls.free, ex)
	}
	for _, call := range late { // added late as the exchange closed
		call()
	}
}

// late runs call, for a listener of the exchange (generation gen) added
// after its event fired, "at once" as a resolved promise would: never
// inside the registering call, never beside another callback of the
// exchange, right after those running now. With a worker pool it goes to
// the exchange's worker queue; else the loop runs it after the callback in
// progress or in a task (apply), or as it retires the exchange. Once the
// exchange is retired no other callback of it can run, and its connection
// may be gone or serving another request: call runs as sock.later says
// (sock is the socket the listener's handle belongs to). Safe from any
// goroutine.
func (ex *exchange) late(gen uint32, sock *Socket, call func()) {
	s := &ex.resSt
	s.mu.Lock()
	if s.gen.Load() != gen {
		s.mu.Unlock()
		sock.later(call)
		return
	}
	s.addLate(call) // unlocks
}

// addLate is late for the exchange served now, called with mu held; it
// releases it.
func (s *resState) addLate(call func()) {
	ex := s.ex
	if ex.sock.srv.pool != nil {
		s.mu.Unlock()
		ex.post(call)
		return
	}
	s.late = append(s.late, call)
	own := ex.inOwnCallback()
	if own {
		s.ownQueued = true // the loop's goroutine alone writes it
	}
	if s.gone == nil && !own && !s.scheduled {
		// Open, so current: drainSocket applies it. Closed, the loop
		// retires it soon after (unpin) and runs the call then.
		if ex.sock.pc.SubmitConn(ex.gen, drainSocket) == nil {
			s.scheduled = true
		}
	}
	s.mu.Unlock()
}

// Opened creates the Socket of a new connection and fires 'connection'.
func (h *serverHandler) Opened(c *poller.Conn) {
	s := newSocket(c, h.srv)
	c.Data = s
	c.Engine().SetIdleTimeout(orDisabled(h.srv.Timeout())) // as set when accepted (Node)
	for _, fn := range listeners(h.srv, &h.srv.onConnection) {
		s.safely(func() { fn(s) })
	}
}

// Secured fires 'secureConnection': the connection's TLS handshake is
// done.
func (h *serverHandler) Secured(c *poller.Conn) {
	s, ok := c.Data.(*Socket)
	if !ok {
		return
	}
	fns := listeners(h.srv, &h.srv.onSecure)
	if len(fns) == 0 {
		return
	}
	s.noteTLS()
	e := s.more()
	e.securing = true // Destroy and End in a listener act at once (onLoop)
	defer func() { e.securing = false }()
	for _, fn := range fns {
		s.safely(func() { fn(s) })
	}
}

// HandshakeFailed fires 'tlsClientError'; the poller closes the connection
// next.
func (h *serverHandler) HandshakeFailed(c *poller.Conn, err error) {
	s, ok := c.Data.(*Socket)
	if !ok {
		return
	}
	for _, fn := range listeners(h.srv, &h.srv.onTLSError) {
		s.safely(func() { fn(err, s) })
	}
}

// Closed fires the socket's 'close'.
func (h *serverHandler) Closed(c *poller.Conn) {
	s, ok := c.Data.(*Socket)
	if !ok {
		return
	}
	err := c.CloseErr()
	if errors.Is(err, io.EOF) {
		err = nil // the peer's close is no error
	}
	s.emitClose(err)
}

// Request builds the exchange and fires 'request' (or 'checkContinue').
func (h *serverHandler) Request(st *engine.Stream, req *codec.Request) {
	sock := st.Conn().(*poller.Conn).Data.(*Socket)
	ex := sock.nextExchange(st)
	ex.pin()
	defer ex.unpin()
	msg, head, raw := h.newMessage(ex, req)
	ex.msg = msg
	msg.req.init(ex, req, head, raw)
	msg.res.StatusCode, msg.res.st, msg.res.gen, msg.res.sock = 200, &ex.resSt, ex.xgen, sock
	st.Data = ex
	sock.current = ex
	sock.noteTLS()
	if h.srv.opts.AccessLog != nil {
		ex.start = time.Now().UnixNano()
	}

	srv := h.srv
	if h.handOver(ex, req) {
		return
	}
	hot := srv.hot.Load() // published by CreateServer
	if check := hot.onCheckContinue; req.ExpectContinue && check != nil && req.Framing != codec.FramingNone {
		ex.deliver(event{kind: evRequest, handler: check})
		return
	}
	if req.ExpectContinue && req.Framing != codec.FramingNone {
		st.WriteContinue() // RFC 9110 §10.1.1, answered for the handler
	}
	for _, fn := range hot.onRequest {
		ex.deliver(event{kind: evRequest, handler: fn})
	}
}

// newMessage returns the zero message of a new request and its storage
// for the head's copy and raw header list: the exchange's own under
// Options.ReuseMessages (allocated once per exchange and rewritten, unless
// retained), a new one sized to the header list, with bytes from the
// loop's arena, otherwise.
func (h *serverHandler) newMessage(ex *exchange, req *codec.Request) (*message, []byte, []string) {
	if !h.srv.opts.ReuseMessages || h.srv.pool != nil {
		msg, raw := newMessage(2 * len(req.Headers))
		return msg, arenaOf(ex.stream).take(len(headBytes(req))), raw
	}
	m := ex.own.Load()
	if m == nil {
		m = new(reusedMessage)
		ex.own.Store(m)
	}
	m.message = message{} // init and Request set the fields of a zero message
	return &m.message, m.head[:], m.raw[:]
}

// handOver gives an upgrade or CONNECT request to its listeners, if there
// are any, turning the connection into a byte pipe.
func (h *serverHandler) handOver(ex *exchange, req *codec.Request) bool {
	list := &h.srv.onUpgrade
	switch {
	case string(req.Method) == "CONNECT":
		list = &h.srv.onConnect
	case req.Upgrade == nil:
		return false
	}
	fns := listeners(h.srv, list)
	if len(fns) == 0 || ex.stream.Detach() != nil {
		return false
	}
	ex.sock.more().upgraded = ex.stream
	for _, fn := range fns {
		ex.sock.safely(func() { fn(&ex.msg.req, ex.sock, nil) })
	}
	return true
}

// Body delivers a body chunk to req.OnData, or the bytes of an upgraded
// connection to Socket.OnData.
func (h *serverHandler) Body(st *engine.Stream, chunk []byte) {
	ex := st.Data.(*exchange)
	ex.pin()
	defer ex.unpin()
	if ex.sock.x().upgraded == st {
		for _, fn := range ex.sock.dataListeners() {
			ex.sock.safely(func() { fn(chunk) })
		}
		return
	}
	if h.srv.pool != nil {
		// The chunk is borrowed: the worker gets a copy, and the body
		// waits until the workers have caught up (bounded memory).
		ex.paused = true
		st.Pause()
		ex.deliver(event{kind: evData, chunk: append([]byte(nil), chunk...)})
		return
	}
	ex.deliver(event{kind: evData, chunk: chunk})
}

// End completes the request and fires req.OnEnd.
func (h *serverHandler) End(st *engine.Stream, trailers []codec.Header) {
	ex := st.Data.(*exchange)
	ex.pin()
	defer ex.unpin()
	if ex.sock.srv.pool == nil && !ex.reqSt.has(&ex.reqSt.onEnd) {
		ex.msg.req.complete(trailers) // nobody listens: no callback to run
		return
	}
	ex.deliver(event{kind: evEnd, trailers: trailers})
}

// Timeout is the engine's idle timeout (Node's server timeout).
func (h *serverHandler) Timeout(c engine.Conn, _ *engine.Stream) bool {
	sock, ok := c.(*poller.Conn).Data.(*Socket)
	return ok && sock.timeout()
}

// ProtocolError fires 'clientError': the connection sent malformed input,
// which the engine has answered (400, 413, 414, 431, 501 or 505).
func (h *serverHandler) ProtocolError(c engine.Conn, err error) {
	sock, ok := c.(*poller.Conn).Data.(*Socket)
	if !ok {
		return
	}
	err = h.srv.limitError(err)
	for _, fn := range listeners(h.srv, &h.srv.onClientError) {
		sock.safely(func() { fn(err, sock) })
	}
}

// limitError names the limit in a request body over it; other errors pass
// unchanged.
func (s *Server) limitError(err error) error {
	if !errors.Is(err, codec.ErrBodyTooLarge) {
		return err
	}
	return &BodyLimitError{Limit: s.opts.Limits.Resolved().MaxBodySize, Setting: "Options.Limits.MaxBodySize"}
}

// Drain fires res.OnDrain.
func (h *serverHandler) Drain(st *engine.Stream) {
	ex := st.Data.(*exchange)
	ex.pin()
	defer ex.unpin()
	ex.deliver(event{kind: evDrain})
}

// Close ends the exchange: on success the response has been sent (its
// 'finish' already fired); either way req and res get 'close'.
func (h *serverHandler) Close(st *engine.Stream, err error) {
	ex, ok := st.Data.(*exchange)
	if !ok || ex.done {
		return
	}
	ex.pin()
	defer ex.unpin()
	ex.done = true
	st.Data = nil
	if ex.sock.current == ex {
		ex.sock.current = nil
	}
	err = h.srv.limitError(err)
	if l := h.srv.opts.AccessLog; l != nil {
		logAccess(l, ex, st, err)
	}
	ex.limit = ex.resSt.closed(err)
	if ex.resSt.applying {
		ex.closePending = true // 'finish' first: apply emits 'close' after it
		return
	}
	ex.emitClose()
}

// emitClose fires 'close' on the request and the response.
func (ex *exchange) emitClose() {
	limit := ex.limit
	if limit != nil {
		ex.reqSt.lmu.Lock()
		ex.reqSt.err = limit
		ex.reqSt.fired.Or(firedError)
		ex.reqSt.lmu.Unlock()
	}
	ex.reqSt.fired.Or(firedClose) // before looking for listeners: see msgState.fired
	ex.resSt.fired.Or(firedClose)
	if ex.sock.srv.pool == nil && !ex.reqSt.has(&ex.reqSt.onClose) && !ex.resSt.has(&ex.resSt.onClose) &&
		limit == nil {
		return // nobody listens: no callback to run
	}
	ex.deliver(event{kind: evClose})
}

// event is one thing to tell the user code of an exchange. Events are
// values, not closures, so delivering one on the loop allocates nothing.
type event struct {
	kind     eventKind
	handler  func(*IncomingMessage, *ServerResponse) // evRequest
	chunk    []byte                                  // evData (borrowed on the loop)
	trailers []codec.Header                          // evEnd (borrowed on the loop)
}

type eventKind uint8

const (
	evRequest eventKind = iota
	evData
	evEnd
	evDrain
	evClose
	evRequestTimeout
	evResponseTimeout
)

// deliver runs an event's callbacks on the loop, then applies what they
// asked of the response. Panics are left to the engine, which recovers
// them (500 if the head is not out, then close). With a worker pool the
// event goes to the exchange's queue on the pool instead; borrowed bytes
// are copied for it.
func (ex *exchange) deliver(e event) {
	if ex.sock.srv.pool != nil {
		ex.deliverToPool(e)
		return
	}
	prev := ex.cbG.Swap(poller.CallerID()) // a callback in progress when apply delivers more (Resume)
	defer func() {
		ex.cbG.Store(prev)
		if ex.resSt.endOwed {
			ex.resSt.finishEnd()
		}
		if ex.resSt.ownQueued {
			ex.resSt.apply()
		}
	}()
	ex.run(e)
}

// inOwnCallback reports whether the caller is the goroutine running a
// callback of the exchange on its loop, exactly (poller.CallerID; cbG is
// stored by that goroutine and restored before its callback returns, so
// no other goroutine can have the same identity meanwhile): then what it
// asks of the response is carried out as that callback returns (deliver
// calls apply), and needs no task. Any other goroutine gets false. Safe
// from any goroutine.
func (ex *exchange) inOwnCallback() bool {
	return ex.cbG.Load() == poller.CallerID()
}

// deliverToPool hands e to the worker pool. It is a function of its own so
// that only this path moves the event to the heap (the closure keeps it).
//
//go:noinline
func (ex *exchange) deliverToPool(e event) {
	e.own()
	ex.post(func() { ex.run(e) })
}

// own copies the borrowed trailer views of an event that outlives the loop
// callback (body chunks are copied where they are borrowed).
func (e *event) own() {
	if len(e.trailers) == 0 {
		return
	}
	t := make([]codec.Header, len(e.trailers))
	for i, h := range e.trailers {
		t[i] = codec.Header{Name: bytes.Clone(h.Name), Value: bytes.Clone(h.Value)}
	}
	e.trailers = t
}

// run calls the listeners of one event.
func (ex *exchange) run(e event) {
	switch e.kind {
	case evRequest:
		e.handler(&ex.msg.req, &ex.msg.res)
	case evData:
		ex.reqSt.emitData(e.chunk)
	case evEnd:
		ex.msg.req.complete(e.trailers)
	case evDrain:
		ex.resSt.drained()
	case evClose:
		if err := ex.limit; err != nil {
			ex.reqSt.emitError(err)
		}
		ex.reqSt.emit(&ex.reqSt.onClose)
		ex.resSt.emit(&ex.resSt.onClose)
	case evRequestTimeout:
		ex.reqSt.emit(&ex.reqSt.onTimeout)
	case evResponseTimeout:
		ex.resSt.emit(&ex.resSt.onTimeout)
	}
}
