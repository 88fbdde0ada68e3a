package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/loophttp/loophttp/api"
)

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

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

// get runs `loophttp get`: one request, the body (and with -i the head, or
// with -json everything) on out. It fails when no complete response
// arrived.
func get(args []string, stdin io.Reader, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(errOut)
	method := fs.String("X", "", "request method (default GET, or POST with -d)")
	var headers headerFlags
	fs.Var(&headers, "H", "a header field 'Name: value' (repeatable)")
	data := fs.String("d", "", "request body; @file reads a file, @- standard input")
	include := fs.Bool("i", false, "print the status line and headers before the body")
	asJSON := fs.Bool("json", false, "print the response as JSON (octet convention)")
	timeout := fs.Duration("timeout", 30*time.Second, "idle timeout of the request")
	fs.Usage = func() {
		fmt.Fprintln(errOut, "usage: loophttp get [-X METHOD] [-H 'Name: value']... [-d data | -d @file] [-i] [-json] [-timeout d] URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("get needs one URL")
	}
	body, hasBody, err := requestBody(*data, stdin)
	if err != nil {
		return err
	}
	if *method == "" {
		*method = "GET"
		if hasBody {
			*method = "POST"
		}
	}
	res, err := fetchOnce(fs.Arg(0), *method, headers, body, *timeout)
	if err != nil {
		return err
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		return enc.Encode(res.octets())
	case *include:
		var head bytes.Buffer
		for _, in := range res.Interim {
			writeHead(&head, res.Version, in.Status, in.Reason, in.Headers)
		}
		writeHead(&head, res.Version, res.Status, res.Reason, res.Headers)
		if _, err := out.Write(head.Bytes()); err != nil {
			return err
		}
	}
	_, err = io.WriteString(out, res.Body)
	return err
}

// requestBody reads -d: literal data, @file or @- for standard input.
func requestBody(d string, stdin io.Reader) ([]byte, bool, error) {
	switch {
	case d == "":
		return nil, false, nil
	case d == "@-":
		b, err := io.ReadAll(stdin)
		return b, true, err
	case strings.HasPrefix(d, "@"):
		b, err := os.ReadFile(d[1:])
		return b, true, err
	}
	return []byte(d), true, nil
}

func writeHead(w *bytes.Buffer, version string, status int, reason string, headers [][2]string) {
	fmt.Fprintf(w, "%s %d %s\r\n", version, status, reason)
	for _, h := range headers {
		fmt.Fprintf(w, "%s: %s\r\n", h[0], h[1])
	}
	w.WriteString("\r\n")
}

// fetchOnce makes one request with a private agent and waits for its end.
func fetchOnce(url, method string, headers []string, body []byte, timeout time.Duration) (*getResult, error) {
	opts := api.RequestOptions{Method: method, Headers: map[string]string{}}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("header %q: want 'Name: value'", h)
		}
		opts.Headers[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	agent := api.NewAgent(api.AgentOptions{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer agent.Destroy()
	opts.Agent = agent
	res := &getResult{Headers: [][2]string{}, Trailers: [][2]string{}, Interim: []interim{}}
	var rbody bytes.Buffer
	var failure error
	done := make(chan struct{})
	req, err := api.RequestURL(url, opts, func(m *api.IncomingMessage) {
		res.Version, res.Status, res.Reason = "HTTP/"+m.HTTPVersion, m.StatusCode, m.StatusMessage
		res.Headers = rawPairs(m.RawHeaders)
		m.OnData(func(c []byte) { rbody.Write(c) })
		m.OnEnd(func() {
			if len(m.RawTrailers) > 0 {
				res.Trailers = rawPairs(m.RawTrailers)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	req.OnInformation(func(i api.Information) {
		res.Interim = append(res.Interim, interim{Status: i.StatusCode, Reason: i.StatusMessage, Headers: rawPairs(i.RawHeaders)})
	})
	req.SetTimeout(timeout, func() { req.Destroy(fmt.Errorf("no data for %v", timeout)) })
	req.OnError(func(err error) { failure = err })
	req.OnClose(func() { close(done) })
	if err := req.End(body, nil); err != nil {
		return nil, err
	}
	<-done
	if failure != nil {
		return nil, failure
	}
	if res.Status == 0 {
		return nil, errors.New("no response")
	}
	res.Body = rbody.String()
	return res, nil
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
