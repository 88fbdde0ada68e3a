package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/loophttp/loophttp/api"
	"github.com/loophttp/loophttp/engine"
)

// lockedBuffer is a bytes.Buffer safe for the loops and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The lines of the Prometheus text format (version 0.0.4) that
// writeMetrics may produce: HELP and TYPE comments and samples with
// optional labels, names and label names in their grammar, label values
// quoted with the format's escapes.
var (
	helpLine   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]*$`)
	typeLine   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$`)
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)?\})? (\S+)$`)
)

// parseExposition checks every line of a text exposition and returns its
// samples by name and labels as written (`name{label="v"}`).
func parseExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("exposition does not end with a newline")
	}
	samples := map[string]float64{}
	typed := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case helpLine.MatchString(line):
		case typeLine.MatchString(line):
			m := typeLine.FindStringSubmatch(line)
			if _, dup := typed[m[1]]; dup {
				t.Fatalf("line %d: second TYPE for %s", i+1, m[1])
			}
			typed[m[1]] = m[2]
		case sampleLine.MatchString(line):
			m := sampleLine.FindStringSubmatch(line)
			kind, ok := typed[m[1]]
			if !ok {
				t.Fatalf("line %d: sample of %s before its TYPE", i+1, m[1])
			}
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				t.Fatalf("line %d: value %q: %v", i+1, m[3], err)
			}
			if kind == "counter" && (v < 0 || !strings.HasSuffix(m[1], "_total")) {
				t.Fatalf("line %d: counter %s = %v (want a _total name, not negative)", i+1, m[1], v)
			}
			key := m[1] + m[2]
			if _, dup := samples[key]; dup {
				t.Fatalf("line %d: repeated sample %s", i+1, key)
			}
			samples[key] = v
		default:
			t.Fatalf("line %d is not valid text format: %q", i+1, line)
		}
	}
	return samples
}

// expectedSamples lists what /metrics must say for st.
func expectedSamples(st api.Stats) map[string]float64 {
	want := map[string]float64{
		"loophttp_connections_open":       float64(st.OpenConns),
		"loophttp_connections_total":      float64(st.TotalConns),
		"loophttp_connections_paused":     float64(st.PausedConns),
		"loophttp_requests_total":         float64(st.Requests),
		"loophttp_unread_overflows_total": float64(st.TooMuchUnread),
		"loophttp_received_bytes_total":   float64(st.BytesIn),
		"loophttp_sent_bytes_total":       float64(st.BytesOut),

		`loophttp_tls_handshakes_total{result="done"}`:    float64(st.TLSHandshakes),
		`loophttp_tls_handshakes_total{result="failed"}`:  float64(st.TLSFailed),
		`loophttp_tls_handshakes_total{result="timeout"}`: float64(st.TLSTimeouts),
		`loophttp_tls_handshakes_total{result="evicted"}`: float64(st.TLSEvicted),
		"loophttp_tls_plain_requests_total":               float64(st.TLSPlain),
	}
	for c := 1; c <= 5; c++ {
		want[fmt.Sprintf(`loophttp_responses_total{class="%dxx"}`, c)] = float64(st.Responses[c])
	}
	for i := range engine.ProtocolKinds {
		want[`loophttp_protocol_errors_total{kind="`+engine.ProtocolKindName(i)+`"}`] = float64(st.ProtocolErrors[i])
	}
	for k := range engine.TimeoutKinds {
		want[`loophttp_timeouts_total{kind="`+k.String()+`"}`] = float64(st.Timeouts[k])
	}
	return want
}

// startObserved starts the demo with -metrics and -log on free ports and
// returns it, its address, the metrics URL and its output.
func startObserved(t *testing.T) (*api.Server, string, string, *lockedBuffer) {
	t.Helper()
	out := new(lockedBuffer)
	srv, addr, _, err := startDemo([]string{"-addr", "127.0.0.1:0", "-quiet", "-loops", "2", "-metrics", "127.0.0.1:0", "-log"}, out)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, srv)
	m := regexp.MustCompile(`metrics on (http://\S+/metrics)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no metrics address in %q", out.String())
	}
	return srv, addr, m[1], out
}

// TestMetricsEndpoint: after a workload, /metrics is valid text format
// and says what Stats says, sample for sample.
func TestMetricsEndpoint(t *testing.T) {
	srv, addr, metricsURL, _ := startObserved(t)
	for _, path := range []string{"/", "/bytes/1000", "/status/404", "/status/503", "/json"} {
		fetch(t, "GET", "http://"+addr+path, "", nil)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	io.ReadAll(c) // 400 (not a request), then the server closes
	c.Close()

	// A close may still be on its way between two reads: take a scrape
	// between two equal snapshots.
	for try := 0; ; try++ {
		before := srv.Stats()
		resp, err := http.Get(metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != metricsContentType {
			t.Fatalf("Content-Type %q; want %q", ct, metricsContentType)
		}
		got := parseExposition(t, string(body))
		if srv.Stats() != before {
			if try == 100 {
				t.Fatal("counters never settled")
			}
			continue
		}
		if before.Requests != 5 || before.Responses[4] != 2 || before.Responses[5] != 1 || before.BytesIn == 0 || before.BytesOut == 0 {
			t.Fatalf("unexpected Stats for the workload: %+v", before)
		}
		want := expectedSamples(before)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v; want %v", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d samples; want %d:\n%s", len(got), len(want), body)
		}
		return
	}
}

// TestAccessLogFlag: serve -log writes one line per request, with its
// method, target, status, body bytes and duration.
func TestAccessLogFlag(t *testing.T) {
	_, addr, _, out := startObserved(t)
	fetch(t, "GET", "http://"+addr+"/bytes/123", "", nil)
	fetch(t, "POST", "http://"+addr+"/status/404?x=1", "abc", nil)
	line := regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=request method=(\S+) target=("(?:[^"\\]|\\.)*"|\S+) status=(\d+) bytes=(\d+) duration=\S+$`)
	var got []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			if target, err := strconv.Unquote(m[2]); err == nil {
				m[2] = target // slog quotes a value with '=' or '?'
			}
			got = append(got, strings.Join(m[1:], " "))
		} else if strings.Contains(sc.Text(), "msg=request") {
			t.Fatalf("malformed access log line %q", sc.Text())
		}
	}
	_, notFound := fetch(t, "GET", "http://"+addr+"/status/404", "", nil) // the 404 body's size, as the demo writes it
	want := []string{"GET /bytes/123 200 123", "POST /status/404?x=1 404 " + strconv.Itoa(len(notFound))}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("access log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMetricsFlagErrors: a -metrics address that cannot be bound stops
// serve before it starts.
func TestMetricsFlagErrors(t *testing.T) {
	if _, _, _, err := startDemo([]string{"-addr", "127.0.0.1:0", "-quiet", "-metrics", "127.0.0.1:99999"}, io.Discard); err == nil || !strings.Contains(err.Error(), "-metrics") {
		t.Fatalf("got %v; want a -metrics error", err)
	}
}

// TestWriteMetricsFormat: the exposition of a Stats with every counter
// set parses, and names each value once.
func TestWriteMetricsFormat(t *testing.T) {
	var st api.Stats
	st.OpenConns, st.TotalConns, st.PausedConns, st.Requests = 1, 2, 3, 4
	st.BytesIn, st.BytesOut, st.TooMuchUnread = 1<<40, 6, 7
	for i := range st.Responses {
		st.Responses[i] = uint64(10 + i)
	}
	for i := range st.ProtocolErrors {
		st.ProtocolErrors[i] = uint64(20 + i)
	}
	for i := range st.Timeouts {
		st.Timeouts[i] = uint64(60 + i)
	}
	var b bytes.Buffer
	if err := writeMetrics(&b, st); err != nil {
		t.Fatal(err)
	}
	got := parseExposition(t, b.String())
	want := expectedSamples(st)
	if len(got) != len(want) {
		t.Fatalf("%d samples; want %d:\n%s", len(got), len(want), b.String())
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
}
