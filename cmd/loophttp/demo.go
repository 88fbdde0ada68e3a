package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/loophttp/loophttp/api"
)

// demo is the application `loophttp serve` runs. Handlers run on the
// event loop: none blocks, and /delay answers from a timer. The server
// reuses messages (api.Options.ReuseMessages): every handler is done with
// its request and response by 'close', and /delay retains its own.
//
// The handlers that send bodies of any size (/bytes, /stream, /echo) obey
// backpressure as a Node stream does: they write while Write returns true
// and go on at 'drain' (/echo pauses the request meanwhile), so a
// connection holds at most about one high-water mark of their output
// whatever the size and however slowly the client reads.
type demo struct {
	inspect bool // answer every request with its description
	// wrote, when set, hears of every body byte handed to
	// ServerResponse.Write by the streaming handlers (tests count them).
	// It is called on the loop.
	wrote func(n int)
}

// handle routes one request.
func (d *demo) handle(req *api.IncomingMessage, res *api.ServerResponse) {
	path, _, _ := strings.Cut(req.URL, "?")
	switch {
	case d.inspect || path == "/anything" || strings.HasPrefix(path, "/anything/"):
		d.describe(req, res)
	case path == "/":
		text(res, 200, "Hello, World!")
	case path == "/json":
		res.SetHeader("Content-Type", "application/json")
		res.End([]byte(`{"message":"Hello, World!"}`), nil)
	case path == "/echo":
		d.echo(req, res)
	case strings.HasPrefix(path, "/status/"):
		status(res, strings.TrimPrefix(path, "/status/"))
	case strings.HasPrefix(path, "/bytes/"):
		d.sized(res, strings.TrimPrefix(path, "/bytes/"), false)
	case strings.HasPrefix(path, "/stream/"):
		d.sized(res, strings.TrimPrefix(path, "/stream/"), true)
	case strings.HasPrefix(path, "/delay/"):
		delay(res, strings.TrimPrefix(path, "/delay/"))
	default:
		text(res, 404, "not found")
	}
}

func text(res *api.ServerResponse, code int, body string) {
	res.SetHeader("Content-Type", "text/plain")
	if code != 200 {
		res.WriteHead(code, "")
	}
	res.End([]byte(body), nil)
}

// echo streams the body back as it arrives: with the request's length when
// it had one, chunked otherwise. While the answer is over the high-water
// mark the request is paused, so the client's upload waits for its own
// download (TCP flow control holds it) instead of piling up in the server.
func (d *demo) echo(req *api.IncomingMessage, res *api.ServerResponse) {
	if cl := req.Header("content-length"); cl != "" {
		res.SetHeader("Content-Length", cl)
	}
	if ct := req.Header("content-type"); ct != "" {
		res.SetHeader("Content-Type", ct)
	}
	req.OnData(func(chunk []byte) {
		d.count(len(chunk))
		if !res.Write(chunk, nil) {
			req.Pause()
		}
	})
	res.OnDrain(req.Resume)
	req.OnEnd(func() { res.End(nil, nil) })
}

// count reports n body bytes handed to Write.
func (d *demo) count(n int) {
	if d.wrote != nil {
		d.wrote(n)
	}
}

// status answers with the status code in the path (200..599).
func status(res *api.ServerResponse, arg string) {
	code, err := strconv.Atoi(arg)
	if err != nil || code < 200 || code > 599 {
		text(res, 400, "status must be 200..599")
		return
	}
	res.WriteHead(code, "")
	res.End(nil, nil)
}

// maxBytes bounds /bytes and /stream.
const maxBytes = 100 << 20

// sized answers n bytes of the alphabet repeated (/bytes, with a
// Content-Length) or n lines "line i" (/stream, chunked), a piece at a time
// as the connection takes them.
func (d *demo) sized(res *api.ServerResponse, arg string, lines bool) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 || n > maxBytes {
		text(res, 400, "n must be 0.."+strconv.Itoa(maxBytes))
		return
	}
	res.SetHeader("Content-Type", "text/plain")
	var next func([]byte) []byte
	if lines {
		next = (&lineSource{n: n}).next
	} else {
		res.SetHeader("Content-Length", strconv.Itoa(n))
		next = (&alphabetSource{left: n}).next
	}
	p := &pump{d: d, res: res, next: next}
	res.OnDrain(p.run)
	p.run()
}

// pieceSize is the size of the pieces /bytes and /stream write.
const pieceSize = 16 << 10

// pump writes a body piece by piece: while Write takes them, and again on
// each 'drain'; it ends the response after the last piece. It runs on the
// loop (the handler, then 'drain' events), one call at a time.
type pump struct {
	d    *demo
	res  *api.ServerResponse
	next func(buf []byte) []byte // the next piece in buf[:0]; empty once done
	buf  []byte
	done bool
}

func (p *pump) run() {
	for !p.done {
		p.buf = p.next(p.buf[:0])
		if len(p.buf) == 0 {
			p.done = true
			p.res.End(nil, nil)
			return
		}
		p.d.count(len(p.buf))
		if !p.res.Write(p.buf, nil) { // Write copies: buf is free again
			return // go on at 'drain'
		}
	}
}

// alphabetSource is /bytes's body: 'a' + i%26 for byte i.
type alphabetSource struct{ off, left int }

// alphabet holds every piece of the body: a piece starting at offset off
// is alphabet[off%26:][:len].
var alphabet = func() []byte {
	b := make([]byte, pieceSize+26)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

func (s *alphabetSource) next(buf []byte) []byte {
	k := min(s.left, pieceSize)
	buf = append(buf, alphabet[s.off%26:][:k]...)
	s.off += k
	s.left -= k
	return buf
}

// lineSource is /stream's body: "line i\n" for i from 0 to n-1.
type lineSource struct{ i, n int }

func (s *lineSource) next(buf []byte) []byte {
	for ; s.i < s.n && len(buf) < pieceSize; s.i++ {
		buf = append(buf, "line "...)
		buf = strconv.AppendInt(buf, int64(s.i), 10)
		buf = append(buf, '\n')
	}
	return buf
}

// maxDelay bounds /delay.
const maxDelay = 60_000

// delay answers after ms milliseconds, from a timer: the handler returns at
// once and the loop stays free.
func delay(res *api.ServerResponse, arg string) {
	ms, err := strconv.Atoi(arg)
	if err != nil || ms < 0 || ms > maxDelay {
		text(res, 400, "ms must be 0.."+strconv.Itoa(maxDelay))
		return
	}
	res.Retain() // answered after the handler returns (the server reuses messages)
	time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
		text(res, 200, "delayed "+strconv.Itoa(ms)+" ms")
	})
}

// description is the JSON a request is described with. Strings carry
// arbitrary octets: each octet is the code point of the same value.
type description struct {
	Method   string      `json:"method"`
	Target   string      `json:"target"`
	Version  string      `json:"version"`
	Headers  [][2]string `json:"headers"`
	Body     string      `json:"body"`
	Trailers [][2]string `json:"trailers"`
}

// describe answers with the JSON description of the request once its body
// is complete.
func (d *demo) describe(req *api.IncomingMessage, res *api.ServerResponse) {
	var body []byte
	req.OnData(func(chunk []byte) { body = append(body, chunk...) })
	req.OnEnd(func() {
		desc := description{
			Method:   octets(req.Method),
			Target:   octets(req.URL),
			Version:  "HTTP/" + req.HTTPVersion,
			Headers:  pairs(req.RawHeaders),
			Body:     octets(string(body)),
			Trailers: pairs(req.RawTrailers),
		}
		out, err := json.Marshal(desc)
		if err != nil {
			text(res, 500, err.Error())
			return
		}
		res.SetHeader("Content-Type", "application/json")
		res.End(append(out, '\n'), nil)
	})
}

// octets maps each byte of s to the code point of the same value.
func octets(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

func pairs(flat []string) [][2]string {
	out := make([][2]string, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		out = append(out, [2]string{octets(flat[i]), octets(flat[i+1])})
	}
	return out
}
