package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/loophttp/loophttp/api"
	"github.com/loophttp/loophttp/engine"
)

// serve -metrics: the server's counters (api.Server.Stats) in the
// Prometheus text exposition format, version 0.0.4, at /metrics on a
// listener of its own, served by net/http: scrapes never queue behind
// the demo's requests, and the demo's port carries nothing but them.

// metricsContentType is the Content-Type of the text exposition format.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// metricsServer is the -metrics listener.
type metricsServer struct {
	ln net.Listener
}

// listenMetrics listens on addr for metrics scrapes; start serves them.
// Listening first lets a bad -metrics fail before the demo starts.
func listenMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	return &metricsServer{ln: ln}, nil
}

// Addr returns the address the metrics listener is bound to.
func (m *metricsServer) Addr() string { return m.ln.Addr().String() }

// start serves srv's counters at /metrics until srv closes; errors of the
// listener go to errOut.
func (m *metricsServer) start(srv *api.Server, errOut io.Writer) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", metricsContentType)
		_ = writeMetrics(w, srv.Stats())
	})
	hs := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(errOut, "loophttp: metrics listener:", err)
		}
	}()
	srv.OnClose(func() {
		_ = hs.Close()
		<-done
	})
}

// metric is one metric family of the exposition.
type metric struct {
	name, help, kind string // kind: "counter" or "gauge"
	label            string // the label of the samples, or "" for one unlabelled sample
	samples          []sample
}

// sample is one value of a family, labelled with value (when the family
// has a label).
type sample struct {
	value string
	n     float64
}

// metrics lists the families of st.
func metrics(st api.Stats) []metric {
	classes := make([]sample, 0, 5)
	for c := 1; c <= 5; c++ {
		classes = append(classes, sample{strconv.Itoa(c) + "xx", float64(st.Responses[c])})
	}
	kinds := make([]sample, 0, engine.ProtocolKinds)
	for i := range engine.ProtocolKinds {
		kinds = append(kinds, sample{engine.ProtocolKindName(i), float64(st.ProtocolErrors[i])})
	}
	timeouts := make([]sample, 0, engine.TimeoutKinds)
	for k := range engine.TimeoutKinds {
		timeouts = append(timeouts, sample{k.String(), float64(st.Timeouts[k])})
	}
	one := func(n float64) []sample { return []sample{{n: n}} }
	handshakes := []sample{
		{"done", float64(st.TLSHandshakes)}, {"failed", float64(st.TLSFailed)},
		{"timeout", float64(st.TLSTimeouts)}, {"evicted", float64(st.TLSEvicted)},
	}
	return []metric{
		{"loophttp_connections_open", "Connections open now.", "gauge", "", one(float64(st.OpenConns))},
		{"loophttp_connections_total", "Connections accepted.", "counter", "", one(float64(st.TotalConns))},
		{"loophttp_connections_paused", "Open connections not being read now (backpressure, or a request in progress).", "gauge", "", one(float64(st.PausedConns))},
		{"loophttp_requests_total", "Request heads taken.", "counter", "", one(float64(st.Requests))},
		{"loophttp_responses_total", "Final responses sent, by status class.", "counter", "class", classes},
		{"loophttp_protocol_errors_total", "Malformed requests answered with an error and closed, by kind.", "counter", "kind", kinds},
		{"loophttp_unread_overflows_total", "Connections closed for sending more than MaxUnread bytes not yet read.", "counter", "", one(float64(st.TooMuchUnread))},
		{"loophttp_timeouts_total", "Connections closed by a timeout, by kind.", "counter", "kind", timeouts},
		{"loophttp_received_bytes_total", "Bytes read from the sockets.", "counter", "", one(float64(st.BytesIn))},
		{"loophttp_sent_bytes_total", "Bytes written to the sockets.", "counter", "", one(float64(st.BytesOut))},
		{"loophttp_tls_handshakes_total", "TLS handshakes by outcome: done, failed, closed at the handshake timeout, or closed (their peer silent) to make room for waiting ones.", "counter", "result", handshakes},
		{"loophttp_tls_plain_requests_total", "Plain HTTP requests to the TLS port, answered 400.", "counter", "", one(float64(st.TLSPlain))},
	}
}

// writeMetrics writes st in the Prometheus text exposition format.
func writeMetrics(w io.Writer, st api.Stats) error {
	var b []byte
	for _, m := range metrics(st) {
		b = append(b, "# HELP "+m.name+" "+m.help+"\n# TYPE "+m.name+" "+m.kind+"\n"...)
		for _, s := range m.samples {
			b = append(b, m.name...)
			if m.label != "" {
				// Label values here are fixed names: no escaping needed.
				b = append(b, "{"+m.label+"=\""+s.value+"\"}"...)
			}
			b = append(b, ' ')
			b = strconv.AppendFloat(b, s.n, 'g', -1, 64)
			b = append(b, '\n')
		}
	}
	_, err := w.Write(b)
	return err
}
