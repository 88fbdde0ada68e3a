package poller

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/loophttp/loophttp/codec"
	"github.com/loophttp/loophttp/engine"
	"github.com/loophttp/loophttp/internal/conformance"
)

// msgRecorder records the complete messages that reach the handler and
// answers each with 200 "ok".
type msgRecorder struct {
	mu   sync.Mutex
	cur  map[*engine.Stream]*conformance.Message
	msgs []conformance.Message
}

func (r *msgRecorder) Request(s *engine.Stream, req *codec.Request) {
	m := &conformance.Message{
		Method: octets(req.Method), Target: octets(req.Target), Version: octets(req.Proto),
		Body: octets(nil), Headers: []conformance.Field{},
	}
	for _, h := range req.Headers {
		m.Headers = append(m.Headers, conformance.Field{bytes.Clone(h.Name), bytes.Clone(h.Value)})
	}
	ka := req.KeepAlive
	m.KeepAlive = &ka
	r.mu.Lock()
	r.cur[s] = m
	r.mu.Unlock()
}

func (r *msgRecorder) Body(s *engine.Stream, chunk []byte) {
	r.mu.Lock()
	*r.cur[s].Body = append(*r.cur[s].Body, chunk...)
	r.mu.Unlock()
}

func (r *msgRecorder) End(s *engine.Stream, trailers []codec.Header) {
	r.mu.Lock()
	m := r.cur[s]
	for _, h := range trailers {
		m.Trailers = append(m.Trailers, conformance.Field{bytes.Clone(h.Name), bytes.Clone(h.Value)})
	}
	r.msgs = append(r.msgs, *m)
	delete(r.cur, s)
	r.mu.Unlock()
	s.End([]byte("ok"))
}

func (r *msgRecorder) Drain(s *engine.Stream)            {}
func (r *msgRecorder) Close(s *engine.Stream, err error) {}

func (r *msgRecorder) take() []conformance.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.msgs
	r.msgs, r.cur = nil, map[*engine.Stream]*conformance.Message{}
	return m
}

func octets(b []byte) *conformance.Octets {
	o := conformance.Octets(bytes.Clone(b))
	if o == nil {
		o = conformance.Octets{}
	}
	return &o
}

// TestConformanceSocket runs every request case of the corpus over
// a real loopback socket: write raw, half-close, read until the server
// closes; then judge what reached the handler and what came back.
func TestConformanceSocket(t *testing.T) {
	vs := conformance.MustLoad(t)
	rec := &msgRecorder{cur: map[*engine.Stream]*conformance.Message{}}
	s := startServer(t, Config{}, rec)
	for i := range vs {
		v := &vs[i]
		if v.Side != "request" {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			rec.take()
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(v.Raw); err != nil {
				t.Fatal(err)
			}
			var out []byte
			if len(v.ThenSend) > 0 {
				out = readContinue(t, c, v)
				if _, err := c.Write(v.ThenSend); err != nil {
					t.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			rest, err := io.ReadAll(c)
			if err != nil {
				// A reset would mean the staged close lost the answer.
				t.Fatalf("reading to EOF: %v", err)
			}
			out = append(out, rest...)
			if msg := v.JudgeContinue(out); msg != "" && len(v.ThenSend) == 0 {
				t.Fatal(msg)
			}
			if msg := v.JudgeServer(rec.take(), out); msg != "" {
				t.Fatalf("%s\n  raw %q\n  out %q", msg, v.Raw, out)
			}
		})
	}
}

// readContinue reads the 100 Continue a case expects before then_send.
func readContinue(t *testing.T, c net.Conn, v *conformance.Vector) []byte {
	want, _ := v.WantsInterim()
	if !want {
		return nil
	}
	const line = "HTTP/1.1 100 Continue\r\n\r\n"
	buf := make([]byte, len(line))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != line {
		t.Fatalf("want 100 Continue before then_send; got %q, %v", buf, err)
	}
	return buf
}
