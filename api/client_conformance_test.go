package api

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/loophttp/loophttp/internal/conformance"
)

// TestConformanceClientSocket sends the requests of every response case of
// the corpus through the api client to a raw TCP server that
// answers the first connection with the case's bytes and closes, and
// judges what reached OnInformation, OnResponse, OnData, OnEnd and
// OnError. Accepted cases must give exactly the expected messages;
// rejected ones exactly one error and a closed connection. (Keep-alive
// decisions are judged by the engine's corpus test: the api does not
// expose them, so they are not compared here.)
func TestConformanceClientSocket(t *testing.T) {
	vs := conformance.MustLoad(t)
	a := testAgent(t, AgentOptions{MaxSockets: 1})
	for i := range vs {
		v := &vs[i]
		if v.Side != "response" {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			if msg := runClientSocketCase(t, v, a); msg != "" {
				t.Fatalf("%s\n  raw %q", msg, v.Raw)
			}
		})
	}
}

// caseServer answers its first connection with the case's bytes once a
// request head has arrived, then closes; later connections are closed at
// once.
func caseServer(t *testing.T, v *conformance.Vector) (string, int) {
	first := make(chan struct{}, 1)
	first <- struct{}{}
	host, port, _ := rawServer(t, func(c net.Conn) {
		select {
		case <-first:
		default:
			return
		}
		if readHead(bufio.NewReader(c)) == nil {
			_, _ = c.Write(v.Input())
		}
	})
	return host, port
}

// clientCase collects what one request of a case heard.
type clientCase struct {
	msgs     []conformance.Message
	cur      *conformance.Message
	tunnel   bool
	tail     []byte
	err      error
	sockDone chan struct{}
}

func runClientSocketCase(t *testing.T, v *conformance.Vector, a *Agent) string {
	host, port := caseServer(t, v)
	methods := v.Methods()
	cases := make([]*clientCase, len(methods))
	var wg sync.WaitGroup
	for i, m := range methods {
		cc := &clientCase{sockDone: make(chan struct{})}
		cases[i] = cc
		path := "/"
		if m == "CONNECT" {
			path = "example.com:443"
		}
		req, err := Request(RequestOptions{Host: host, Port: port, Method: m, Path: path, Agent: a}, func(res *IncomingMessage) {
			cc.cur = &conformance.Message{
				Version: octetsOf("HTTP/" + res.HTTPVersion),
				Status:  res.StatusCode,
				Reason:  octetsOf(res.StatusMessage),
				Headers: fieldsOf(res.RawHeaders),
				Body:    octetsOf(""),
			}
			cc.tunnel = m == "CONNECT" && res.StatusCode/100 == 2 || res.StatusCode == 101
			if cc.tunnel {
				cc.msgs = append(cc.msgs, *cc.cur)
			}
			res.OnData(func(c []byte) {
				if cc.tunnel {
					cc.tail = append(cc.tail, c...)
					return
				}
				*cc.cur.Body = append(*cc.cur.Body, c...)
			})
			res.OnEnd(func() {
				if !cc.tunnel {
					if len(res.RawTrailers) > 0 {
						cc.cur.Trailers = fieldsOf(res.RawTrailers)
					}
					cc.msgs = append(cc.msgs, *cc.cur)
				}
			})
		})
		if err != nil {
			return "request: " + err.Error()
		}
		req.OnInformation(func(info Information) {
			cc.msgs = append(cc.msgs, conformance.Message{
				Version: octetsOf("HTTP/" + info.HTTPVersion),
				Status:  info.StatusCode,
				Reason:  octetsOf(info.StatusMessage),
				Headers: fieldsOf(info.RawHeaders),
				Body:    octetsOf(""),
				Interim: true,
			})
		})
		req.OnSocket(func(s *Socket) {
			if i == 0 {
				s.OnClose(func() { close(cc.sockDone) })
			}
		})
		req.OnError(func(err error) { cc.err = err })
		wg.Add(1)
		req.OnClose(func() { wg.Done() })
		req.End(nil, nil)
	}
	if !waitGroup(&wg, 10*time.Second) {
		return "requests did not close"
	}
	o := &conformance.Outcome{}
	errs := 0
	for i, cc := range cases {
		o.Messages = append(o.Messages, cc.msgs...)
		if cc.tunnel {
			o.Stopped, o.Tail = true, cc.tail
		}
		var pe *ParseError
		switch {
		case cc.err == nil:
		case errors.As(cc.err, &pe):
			o.Err, errs = pe.Kind, errs+1
		case errors.Is(cc.err, ErrResponseAborted), errors.Is(cc.err, ErrSocketHangUp) && (i == 0 || len(cc.msgs) > 0):
			o.Incomplete, errs = true, errs+1
		case errors.Is(cc.err, ErrSocketHangUp):
			// No response at all to a later request: one after the
			// case's last, or after its error (the server answers once).
		default:
			return "error " + cc.err.Error()
		}
	}
	if v.Expect == "reject" && errs != 1 {
		return "want exactly one error"
	}
	select {
	case <-cases[0].sockDone:
	case <-time.After(10 * time.Second):
		return "connection not closed"
	}
	o.Stopped = o.Stopped || v.IgnoredTail // the close after the case's bytes shows it
	for i := range v.Parsed {
		v.Parsed[i].KeepAlive = nil
	}
	v.KeepAlive = nil
	return v.Judge(o)
}

func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func octetsOf(s string) *conformance.Octets {
	o := conformance.Octets(s)
	return &o
}

func fieldsOf(raw []string) []conformance.Field {
	out := []conformance.Field{}
	for i := 0; i+1 < len(raw); i += 2 {
		out = append(out, conformance.Field{conformance.Octets(raw[i]), conformance.Octets(raw[i+1])})
	}
	return out
}
