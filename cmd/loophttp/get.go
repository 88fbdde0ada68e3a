package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loophttp/loophttp/api"
)

const getSynopsis = "usage: loophttp get [flags] URL"

const getAbout = `Makes one request and prints the response body as it arrives, so a body of
any size takes no memory (with -i the status line and header fields first;
with -json the whole exchange as JSON, every octet as the code point of the
same value, which holds the body). -v writes the request head (as
built: the api frames the body) and the response heads on standard error,
like curl -v. -H may be repeated: fields go out in the order given; a
name given twice is sent once with its values joined by ", " (RFC 9110
§5.3; "; " for Cookie), as the api cannot send a field twice yet.
https:// URLs verify the server against the system's roots, or -cacert's;
-k accepts any certificate, as curl -k; -cert and -key present a client
certificate, as curl --cert and --key.

Exit status: 0 when a whole response arrived, whatever its status; 1 when
the request failed (connect, reset, a response that breaks HTTP/1.1, a
truncated body, writing -o); 2 for a usage error; 3 when -timeout or
-max-time passed.`

// getResult is what a get collected; -json prints it in the conformance
// corpus's octet convention.
type getResult struct {
	Version  string      `json:"version"`
	Status   int         `json:"status"`
	Reason   string      `json:"reason"`
	Headers  [][2]string `json:"headers"`
	Trailers [][2]string `json:"trailers"`
	Body     string      `json:"body"`
	Interim  []interim   `json:"interim"`
}

type interim struct {
	Status  int         `json:"status"`
	Reason  string      `json:"reason"`
	Headers [][2]string `json:"headers"`
}

// getRequest is a get, from the flags.
type getRequest struct {
	url, method string
	headers     []field
	body        []byte
	timeout     time.Duration // idle: no data for this long
	maxTime     time.Duration // the whole exchange; 0: none
	verbose     io.Writer     // -v: heads go here; nil for none
	// sink receives the body as it arrives (with the heads first for -i),
	// so a body of any size takes no memory; nil keeps the body in the
	// result (-json). Written on the client's loop: a slow sink holds the
	// loop, and TCP flow control the server.
	sink    io.Writer
	include bool
	tls     *api.TLSOptions // https: -k, -cacert, -cert, -key; nil: the system's roots, no client certificate
}

// timeoutError is a get that ran out of time (exit status 3).
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// get runs `loophttp get`: one request, the body (and with -i the head, or
// with -json everything) on out, or in the -o file. It fails when no
// complete response arrived.
func get(args []string, stdin io.Reader, out, errOut io.Writer) error {
	fs := newFlagSet("get")
	method := fs.String("X", "", "request method (default GET, or POST with -d)")
	var headers headerFlags
	fs.Var(&headers, "H", "a header field 'Name: value' (repeatable, sent in order)")
	data := fs.String("d", "", "request body; @file reads a file, @- standard input")
	include := fs.Bool("i", false, "print the status line and header fields before the body")
	asJSON := fs.Bool("json", false, "print the response as JSON (octet convention)")
	verbose := fs.Bool("v", false, "write the request and response heads on standard error")
	output := fs.String("o", "", "write the output to this file (once the whole response is in) instead of standard output")
	timeout := fs.Duration("timeout", 30*time.Second, "fail when no data moves for this long")
	maxTime := fs.Duration("max-time", 0, "fail when the whole exchange takes longer (0: no limit)")
	tf := addClientTLSFlags(fs)
	pos, err := parseArgs(fs, args, getSynopsis, getAbout, out)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		return usagef(fs, "want one URL, got %d arguments", len(pos))
	case *timeout <= 0:
		return usagef(fs, "-timeout %v: want a positive duration", *timeout)
	case *maxTime < 0:
		return usagef(fs, "-max-time %v: want 0 (no limit) or a positive duration", *maxTime)
	}
	req := &getRequest{url: pos[0], timeout: *timeout, maxTime: *maxTime}
	if req.tls, err = tf.options(fs); err != nil {
		return err
	}
	if req.body, err = readBody(*data, stdin); err != nil {
		return usagef(fs, "-d %s: %v", *data, err)
	}
	req.method = methodFor(*method, *data != "")
	if req.headers, err = parseFields(headers); err != nil {
		return usagef(fs, "%v", err)
	}
	if *verbose {
		req.verbose = errOut
	}
	if *asJSON {
		res, err := fetchOnce(req)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res.octets()); err != nil {
			return err
		}
		if *output != "" {
			return os.WriteFile(*output, b.Bytes(), 0o644)
		}
		_, err = out.Write(b.Bytes())
		return err
	}
	req.include = *include
	if *output == "" {
		req.sink = out
		_, err := fetchOnce(req)
		return err
	}
	return fetchToFile(req, *output)
}

// fetchToFile streams the output into a temporary file beside path and
// renames it to path once the whole response is in; on failure path is
// left untouched.
func fetchToFile(req *getRequest, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".loophttp-get-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	w := bufio.NewWriterSize(f, 64<<10)
	req.sink = w
	_, err = fetchOnce(req)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// writeHead writes a response head, each line after prefix ("< " for -v).
func writeHead(w *bytes.Buffer, prefix, version string, status int, reason string, headers [][2]string) {
	fmt.Fprintf(w, "%s%s %d %s\r\n", prefix, version, status, reason)
	for _, h := range headers {
		fmt.Fprintf(w, "%s%s: %s\r\n", prefix, h[0], h[1])
	}
	w.WriteString(prefix + "\r\n")
}

// mergeFields joins the values of fields that share a name (compared
// without regard to case) into the first of them: RFC 9110 §5.3 makes
// that the same message, and the api keeps one field per name. Cookie
// values are joined with "; " (RFC 6265 §5.4).
func mergeFields(fs []field) []field {
	var out []field
	for _, f := range fs {
		i := slicesIndexFold(out, f.name)
		if i < 0 {
			out = append(out, f)
			continue
		}
		sep := ", "
		if strings.EqualFold(f.name, "cookie") {
			sep = "; "
		}
		out[i].value += sep + f.value
	}
	return out
}

func slicesIndexFold(fs []field, name string) int {
	for i, f := range fs {
		if strings.EqualFold(f.name, name) {
			return i
		}
	}
	return -1
}

// fetchOnce makes one request with a private agent and waits for its end.
func fetchOnce(g *getRequest) (*getResult, error) {
	fields := mergeFields(g.headers)
	opts := api.RequestOptions{Method: g.method, TLS: g.tls}
	agent := api.NewAgent(api.AgentOptions{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer agent.Destroy()
	opts.Agent = agent
	res := &getResult{Headers: [][2]string{}, Trailers: [][2]string{}, Interim: []interim{}}
	var (
		rbody   bytes.Buffer
		mu      sync.Mutex // guards failure: the -max-time timer and the loop set it
		failure error
	)
	fail := func(err error) {
		mu.Lock()
		if failure == nil {
			failure = err
		}
		mu.Unlock()
	}
	done := make(chan struct{})
	var self atomic.Pointer[api.ClientRequest] // the request, for its response's callbacks
	req, err := api.RequestURL(g.url, opts, func(m *api.IncomingMessage) {
		res.Version, res.Status, res.Reason = "HTTP/"+m.HTTPVersion, m.StatusCode, m.StatusMessage
		res.Headers = rawPairs(m.RawHeaders)
		g.logHead("< ", res.Version, res.Status, res.Reason, res.Headers)
		if g.sink == nil {
			m.OnData(func(c []byte) { rbody.Write(c) })
			return
		}
		if g.include {
			var b bytes.Buffer
			for _, in := range res.Interim {
				writeHead(&b, "", res.Version, in.Status, in.Reason, in.Headers)
			}
			writeHead(&b, "", res.Version, res.Status, res.Reason, res.Headers)
			if _, err := g.sink.Write(b.Bytes()); err != nil {
				fail(err)
			}
		}
		m.OnData(func(c []byte) {
			if _, err := g.sink.Write(c); err != nil {
				err = fmt.Errorf("writing the body: %w", err)
				fail(err)
				if r := self.Load(); r != nil {
					r.Destroy(err)
				}
			}
		})
		m.OnEnd(func() {
			if len(m.RawTrailers) > 0 {
				res.Trailers = rawPairs(m.RawTrailers)
			}
		})
	})
	if err != nil {
		return nil, &usageError{cmd: "get", msg: err.Error()}
	}
	self.Store(req)
	for _, f := range fields {
		if err := req.SetHeader(f.name, f.value); err != nil {
			return nil, &usageError{cmd: "get", msg: fmt.Sprintf("-H %q: %v", f.name+": "+f.value, err)}
		}
	}
	req.OnInformation(func(i api.Information) {
		in := interim{Status: i.StatusCode, Reason: i.StatusMessage, Headers: rawPairs(i.RawHeaders)}
		res.Interim = append(res.Interim, in)
		g.logHead("< ", "HTTP/"+i.HTTPVersion, in.Status, in.Reason, in.Headers)
	})
	req.SetTimeout(g.timeout, func() {
		err := &timeoutError{fmt.Sprintf("no data for %v (-timeout)", g.timeout)}
		fail(err)
		req.Destroy(err)
	})
	if g.maxTime > 0 {
		t := time.AfterFunc(g.maxTime, func() {
			err := &timeoutError{fmt.Sprintf("the exchange took longer than %v (-max-time)", g.maxTime)}
			fail(err)
			req.Destroy(err)
		})
		defer t.Stop()
	}
	req.OnError(fail)
	req.OnClose(func() { close(done) })
	g.logRequest(req, fields)
	if err := req.End(g.body, nil); err != nil {
		return nil, err
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	if failure != nil {
		return nil, failure
	}
	if res.Status == 0 {
		return nil, errors.New("no response")
	}
	res.Body = rbody.String()
	return res, nil
}

// logRequest writes the request head for -v as the api will send it: the
// Host field unless -H set one, the fields in order, and the framing End
// gives the body.
func (g *getRequest) logRequest(req *api.ClientRequest, fields []field) {
	if g.verbose == nil {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "> %s %s HTTP/1.1\r\n", req.Method, req.Path)
	if slicesIndexFold(fields, "host") < 0 {
		fmt.Fprintf(&b, "> Host: %s\r\n", req.Host)
	}
	for _, f := range fields {
		fmt.Fprintf(&b, "> %s: %s\r\n", f.name, f.value)
	}
	if slicesIndexFold(fields, "content-length") < 0 && slicesIndexFold(fields, "transfer-encoding") < 0 &&
		(len(g.body) > 0 || !bodylessMethod(req.Method)) {
		fmt.Fprintf(&b, "> Content-Length: %s\r\n", strconv.Itoa(len(g.body)))
	}
	b.WriteString(">\r\n")
	g.verbose.Write(b.Bytes())
}

// logHead writes a response head for -v. It runs on the client's loop
// while the caller waits.
func (g *getRequest) logHead(prefix, version string, status int, reason string, headers [][2]string) {
	if g.verbose == nil {
		return
	}
	var b bytes.Buffer
	writeHead(&b, prefix, version, status, reason, headers)
	g.verbose.Write(bytes.Replace(b.Bytes(), []byte("< \r\n"), []byte("<\r\n"), 1))
}

// bodylessMethod lists the methods a request without a body goes out
// without "Content-Length: 0" for (the engine's rule, Node's).
func bodylessMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT":
		return true
	}
	return false
}

// octets returns res with every string in the octet convention.
func (r *getResult) octets() *getResult {
	o := *r
	o.Version, o.Reason, o.Body = octets(r.Version), octets(r.Reason), octets(r.Body)
	o.Headers, o.Trailers = octetPairs(r.Headers), octetPairs(r.Trailers)
	o.Interim = make([]interim, len(r.Interim))
	for i, in := range r.Interim {
		o.Interim[i] = interim{Status: in.Status, Reason: octets(in.Reason), Headers: octetPairs(in.Headers)}
	}
	return &o
}

func octetPairs(ps [][2]string) [][2]string {
	out := make([][2]string, len(ps))
	for i, p := range ps {
		out[i] = [2]string{octets(p[0]), octets(p[1])}
	}
	return out
}

// rawPairs turns Node's flat header list into pairs, as received.
func rawPairs(flat []string) [][2]string {
	out := make([][2]string, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		out = append(out, [2]string{flat[i], flat[i+1]})
	}
	return out
}
